"""Deploy one stack of a `cdk synth` cloud assembly into the emulator, resource by resource, via boto3.

Not CloudFormation: there is no change set, no rollback and no deletion of resources that left the
template. A redeploy updates functions (code and environment), state machines, rules, policies and
alarms in place and keeps existing buckets, queues and tables.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local.aws import session as emulator_session
from local.aws.cfn_loader.assembly import StackArtifact, read_stack
from local.aws.cfn_loader.graph import creation_order
from local.aws.cfn_loader.intrinsics import Resolver, TemplateError, pseudo_parameters
from local.aws.cfn_loader.resources import HANDLERS, DeployContext
from local.aws.cfn_loader.stack import DeployedStack, StackResource, load_stack

# CDK's bootstrap check (`Rules.CheckBootstrapVersion`) is not evaluated; any version satisfies it.
LOCAL_BOOTSTRAP_VERSION = "99"
_QUIET_TYPES = {"AWS::CDK::Metadata"}


class DeployError(RuntimeError):
    """A resource could not be created. The message names the logical id and type."""


class StackReferences:
    """Ref / Fn::GetAtt answered from what has been deployed; skipped resources give placeholders."""

    def __init__(
        self,
        template_resources: Mapping[str, Any],
        ctx_region: str,
        ctx_account: str,
        warn: Callable[[str], None],
    ) -> None:
        self.template_resources = template_resources
        self.deployed: dict[str, StackResource] = {}
        self.skipped: dict[str, str] = {}
        self.region, self.account = ctx_region, ctx_account
        self.warn = warn

    def placeholder(self, logical_id: str, attribute: str | None = None) -> str:
        resource_type = self.skipped[logical_id]
        if attribute and attribute.endswith("Arn"):
            # ARN-shaped, so IAM policy documents that mention it still validate.
            return f"arn:aws:skipped:{self.region}:{self.account}:{resource_type}/{logical_id}"
        return f"<skipped {resource_type} {logical_id}{'.' + attribute if attribute else ''}>"

    def ref(self, logical_id: str) -> Any:
        if logical_id in self.deployed:
            return self.deployed[logical_id].physical_id
        if logical_id in self.skipped:
            return self.placeholder(logical_id)
        raise TemplateError(f"Ref to '{logical_id}', which is neither a parameter nor a deployed resource")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id in self.skipped:
            return self.placeholder(logical_id, attribute)
        resource = self.deployed.get(logical_id)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt on '{logical_id}', which is not a deployed resource")
        if attribute not in resource.attributes:
            self.warn(f"Fn::GetAtt {logical_id}.{attribute} is not known locally for {resource.type}")
            return f"<unknown {logical_id}.{attribute}>"
        return resource.attributes[attribute]


def deploy_assembly(
    cdk_out: Path,
    stack_name: str,
    *,
    endpoint_url: str,
    environment_overrides: dict[str, str] | None = None,
    progress: Callable[[str], None] = print,
    region: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> DeployedStack:
    """Create (or update) every supported resource of `stack_name`; see the module docstring."""
    started = time.monotonic()
    artifact = read_stack(Path(cdk_out), stack_name)
    region = region or artifact.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    region = region or "us-east-1"
    sts = emulator_session(region).client("sts", endpoint_url=endpoint_url)
    account_id = str(sts.get_caller_identity()["Account"])
    previous = load_stack(artifact.stack_name)
    ctx = DeployContext(
        artifact=artifact,
        region=region,
        account_id=account_id,
        endpoint_url=endpoint_url,
        environment_overrides=dict(environment_overrides or {}),
        previous=dict(previous.resources) if previous else {},
        progress=progress,
    )
    progress(f"Deploying {artifact.stack_name} to {endpoint_url} ({region}, account {account_id})")
    stack = _deploy(ctx, artifact, parameters or {})
    stack.save()
    progress(
        f"Deployed {artifact.stack_name}: {len(stack.resources)} resources, {len(stack.skipped)} skipped "
        f"in {time.monotonic() - started:.1f}s"
    )
    return stack


def _deploy(ctx: DeployContext, artifact: StackArtifact, given: Mapping[str, Any]) -> DeployedStack:
    template = artifact.template
    resources: dict[str, Any] = template.get("Resources", {})
    references = StackReferences(resources, ctx.region, ctx.account_id, ctx.note)
    stack_id = (
        f"arn:aws:cloudformation:{ctx.region}:{ctx.account_id}:stack/{artifact.stack_name}/"
        f"{uuid.uuid5(uuid.NAMESPACE_URL, artifact.stack_name)}"
    )
    pseudo = pseudo_parameters(
        account_id=ctx.account_id, region=ctx.region, stack_name=artifact.stack_name, stack_id=stack_id
    )
    resolver = Resolver(
        template, parameters=stack_parameters(ctx, template, given), pseudo=pseudo, references=references
    )
    for logical_id in creation_order(resources):
        resource = resources[logical_id]
        resource_type = resource["Type"]
        handler = HANDLERS.get(resource_type)
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            references.skipped[logical_id] = resource_type
            continue
        if handler is None:
            references.skipped[logical_id] = resource_type
            if resource_type not in _QUIET_TYPES:
                ctx.progress(
                    f"  skipped {resource_type} {logical_id}: not emulated locally; "
                    "Ref/GetAtt give a placeholder"
                )
            continue
        try:
            created = handler(ctx, logical_id, resolver.resolve(resource.get("Properties", {})))
        except Exception as error:
            raise DeployError(f"{logical_id} ({resource_type}): {error}") from error
        references.deployed[logical_id] = StackResource(
            resource_type, created.physical_id, created.attributes
        )
        ctx.progress(f"  {created.action} {resource_type} {logical_id}: {created.physical_id}")
    outputs = {
        name: resolver.resolve(output["Value"])
        for name, output in template.get("Outputs", {}).items()
        if "Condition" not in output or resolver.condition(output["Condition"])
    }
    return DeployedStack(
        stack_name=artifact.stack_name,
        region=ctx.region,
        account_id=ctx.account_id,
        endpoint_url=ctx.endpoint_url,
        resources=references.deployed,
        outputs=outputs,
        skipped={k: v for k, v in references.skipped.items() if v not in _QUIET_TYPES},
    )


def stack_parameters(
    ctx: DeployContext, template: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Parameter values: given, else Default; SSM-typed ones are read from the emulator's SSM."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no Default; pass parameters={{'{name}': ...}}")
        kind = str(spec.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value<"):
            value = _ssm_value(ctx, name, str(value))
        if (kind == "CommaDelimitedList" or kind.startswith("List<")) and isinstance(value, str):
            value = [item.strip() for item in value.split(",")]
        values[name] = value
    return values


def _ssm_value(ctx: DeployContext, parameter: str, ssm_name: str) -> str:
    if parameter == "BootstrapVersion":
        return LOCAL_BOOTSTRAP_VERSION
    try:
        return str(ctx.client("ssm").get_parameter(Name=ssm_name)["Parameter"]["Value"])
    except ctx.client("ssm").exceptions.ParameterNotFound:
        raise TemplateError(
            f"parameter {parameter}: SSM parameter {ssm_name} does not exist locally"
        ) from None
