"""Where the CLI acts: the local runtime when it is up with the stack deployed, otherwise AWS.

The stack's CloudFormation outputs (DescribeStacks) name every resource, on AWS and in the emulator's
CloudFormation alike, so every command is written once for both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import NoRegionError

from osbatch.dal import JobTable

STACK_NAME = os.environ.get("OSBATCH_STACK", "osbatch")


class TargetError(RuntimeError):
    """Nothing to talk to: no local stack and no deployed AWS stack."""


@dataclass(frozen=True)
class Target:
    name: str
    endpoint_url: str | None
    outputs: dict[str, str]
    opensearch_url: str | None = None
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise TargetError(f"the {self.name} stack has no output {key}; redeploy it") from None

    @cached_property
    def jobs(self) -> JobTable:
        resource = self.session.resource("dynamodb", endpoint_url=self.endpoint_url)
        return JobTable(resource.Table(self.output("JobTableName")))


def local_target() -> Target | None:
    from local.aws import session
    from local.runtime import AWS_URL, local_runtime

    runtime = local_runtime()
    if not runtime.aws.status().running:
        return None
    outputs = stack_outputs(session().client("cloudformation", endpoint_url=AWS_URL))
    if outputs is None:
        return None
    return Target("local", AWS_URL, outputs, runtime.opensearch.url, session())


def aws_target() -> Target:
    try:
        cloudformation = boto3.client("cloudformation")
    except NoRegionError:
        raise TargetError(
            "no local runtime is up and no AWS region is configured. Run `osbatch up && osbatch deploy "
            "--local`, or set AWS_REGION (or a profile's region) to act on the AWS stack."
        ) from None
    outputs = stack_outputs(cloudformation, raise_errors=True)
    assert outputs is not None
    return Target("aws", None, outputs, outputs.get("OpenSearchEndpoint"))


def stack_outputs(cloudformation: Any, *, raise_errors: bool = False) -> dict[str, str] | None:
    try:
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    except Exception as error:
        if not raise_errors:
            return None
        raise TargetError(
            f"no local runtime is up and the AWS stack {STACK_NAME} could not be read ({error}). "
            "Run `osbatch up && osbatch deploy --local`, or `cdk deploy`."
        ) from None
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def resolve_target() -> Target:
    return local_target() or aws_target()
