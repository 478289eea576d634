"""AWS::Lambda::Function, LayerVersion, EventSourceMapping, Permission; CDK's Custom::LogRetention."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code, tags_dict, zip_inline

# CloudFormation properties passed to CreateFunction / UpdateFunctionConfiguration unchanged.
_CONFIGURATION = (
    "Runtime",
    "Handler",
    "Role",
    "Timeout",
    "MemorySize",
    "Description",
    "Layers",
    "TracingConfig",
    "DeadLetterConfig",
    "EphemeralStorage",
    "KMSKeyArn",
)


def function(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    client = ctx.client("lambda")
    name = props.get("FunctionName") or ctx.physical_name(logical_id)
    code = _code(ctx, props)
    configuration = {key: props[key] for key in _CONFIGURATION if key in props}
    # environment_overrides reach every function: that is how the local runtime re-points them.
    variables = {**props.get("Environment", {}).get("Variables", {}), **ctx.environment_overrides}
    configuration["Environment"] = {"Variables": {k: str(v) for k, v in variables.items()}}
    try:
        current = client.get_function_configuration(FunctionName=name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        created = client.create_function(
            FunctionName=name,
            Code={"ZipFile": code},
            PackageType="Zip",
            Architectures=props.get("Architectures", ["x86_64"]),
            Tags=tags_dict(props.get("Tags")),
            **configuration,
        )
        return Created(name, {"Arn": created["FunctionArn"]}, "created")
    client.update_function_configuration(FunctionName=name, **configuration)
    if current.get("CodeSha256") != base64.b64encode(hashlib.sha256(code).digest()).decode():
        client.update_function_code(FunctionName=name, ZipFile=code)
    return Created(name, {"Arn": current["FunctionArn"]}, "updated")


def _code(ctx: DeployContext, props: dict[str, Any]) -> bytes:
    code = props.get("Code", {})
    if "ZipFile" in code:
        # Inline source (CDK's custom resource providers): Lambda stores it as index.py / index.js.
        extension = "js" if str(props.get("Runtime", "")).startswith("nodejs") else "py"
        return zip_inline(f"index.{extension}", code["ZipFile"])
    if "S3Key" in code:
        return ctx.asset_zip(code)
    raise ValueError(f"unsupported Lambda Code {sorted(code)}: only zip assets and inline code run locally")


def layer_version(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    """Recorded, not uploaded: handlers import their dependencies from the host venv, so the layer's
    content is never read. The published placeholder names the asset it stands for."""
    client = ctx.client("lambda")
    name = props.get("LayerName") or ctx.physical_name(logical_id)
    object_key = props.get("Content", {}).get("S3Key", "")
    description = f"{props.get('Description', '')} [local placeholder for asset {object_key}]".strip()
    versions = client.list_layer_versions(LayerName=name).get("LayerVersions", [])
    if versions and versions[0].get("Description") == description:
        arn = versions[0]["LayerVersionArn"]
        return Created(arn, {"LayerVersionArn": arn}, "exists")
    asset = ctx.artifact.asset_for_key(object_key)
    readme = f"Placeholder for the layer asset {asset.path if asset else object_key}; see local/aws.\n"
    published = client.publish_layer_version(
        LayerName=name,
        Description=description,
        Content={"ZipFile": zip_inline("LOCAL_PLACEHOLDER.txt", readme)},
        CompatibleRuntimes=props.get("CompatibleRuntimes", []),
    )
    ctx.note(f"layer {name}: content not uploaded; dependencies come from the host venv")
    return Created(published["LayerVersionArn"], {"LayerVersionArn": published["LayerVersionArn"]}, "created")


def event_source_mapping(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    client = ctx.client("lambda")
    settings = {
        key: props[key]
        for key in (
            "BatchSize",
            "Enabled",
            "FunctionResponseTypes",
            "MaximumBatchingWindowInSeconds",
            "ScalingConfig",
        )
        if key in props
    }
    function_name = props["FunctionName"].split(":")[-1]
    for existing in client.list_event_source_mappings(EventSourceArn=props["EventSourceArn"])[
        "EventSourceMappings"
    ]:
        if existing["FunctionArn"].split(":")[-1] == function_name:
            client.update_event_source_mapping(
                UUID=existing["UUID"], FunctionName=props["FunctionName"], **settings
            )
            return Created(existing["UUID"], _mapping_attributes(ctx, existing["UUID"]), "updated")
    created = client.create_event_source_mapping(
        EventSourceArn=props["EventSourceArn"], FunctionName=props["FunctionName"], **settings
    )
    return Created(created["UUID"], _mapping_attributes(ctx, created["UUID"]), "created")


def _mapping_attributes(ctx: DeployContext, uuid: str) -> dict[str, str]:
    return {"Id": uuid, "EventSourceMappingArn": ctx.arn("lambda", f"event-source-mapping:{uuid}")}


def permission(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    optional = {
        key: props[key]
        for key in ("SourceArn", "SourceAccount", "EventSourceToken", "FunctionUrlAuthType", "PrincipalOrgID")
        if key in props
    }
    try:
        ctx.client("lambda").add_permission(
            FunctionName=props["FunctionName"],
            StatementId=logical_id,
            Action=props["Action"],
            Principal=props["Principal"],
            **optional,
        )
    except ClientError as error:
        if error_code(error) != "ResourceConflictException":
            raise
        return Created(logical_id, {}, "exists")
    return Created(logical_id, {}, "created")


def log_retention(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    """CDK's LogRetention custom resource, applied directly instead of running its provider."""
    logs = ctx.client("logs")
    name = props["LogGroupName"]
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as error:
        if error_code(error) != "ResourceAlreadyExistsException":
            raise
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return Created(name, {}, "applied")


HANDLERS = {
    "AWS::Lambda::Function": function,
    "AWS::Lambda::LayerVersion": layer_version,
    "AWS::Lambda::EventSourceMapping": event_source_mapping,
    "AWS::Lambda::Permission": permission,
    "Custom::LogRetention": log_retention,
}
