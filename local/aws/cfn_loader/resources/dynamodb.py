"""AWS::DynamoDB::Table and AWS::DynamoDB::GlobalTable (CDK's TableV2), created as one regional table."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code, tags_dict


def table(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    dynamodb = ctx.client("dynamodb")
    name = props.get("TableName") or ctx.physical_name(logical_id, max_length=255)
    try:
        description = dynamodb.describe_table(TableName=name)["Table"]
        action = "exists"  # tables are kept as they are: changing keys would need a replacement
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        description = dynamodb.create_table(TableName=name, **_create_arguments(props))["TableDescription"]
        action = "created"
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled") in (True, "true") and action == "created":
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    attributes = {"Arn": description["TableArn"]}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    return Created(name, attributes, action)


def _create_arguments(props: dict[str, Any]) -> dict[str, Any]:
    billing = props.get("BillingMode", "PROVISIONED")
    arguments: dict[str, Any] = {
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        arguments["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    indexes = [_index(index, billing) for index in props.get("GlobalSecondaryIndexes", [])]
    if indexes:
        arguments["GlobalSecondaryIndexes"] = indexes
    local_indexes = [
        {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
        for index in props.get("LocalSecondaryIndexes", [])
    ]
    if local_indexes:
        arguments["LocalSecondaryIndexes"] = local_indexes
    stream = props.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification")
    if sse:
        arguments["SSESpecification"] = {
            k: v for k, v in sse.items() if k in ("Enabled", "SSEEnabled", "SSEType", "KMSMasterKeyId")
        }
        if "SSEEnabled" in arguments["SSESpecification"]:
            arguments["SSESpecification"]["Enabled"] = arguments["SSESpecification"].pop("SSEEnabled")
    tags = props.get("Tags")
    if tags:
        arguments["Tags"] = [{"Key": k, "Value": v} for k, v in tags_dict(tags).items()]
    return arguments


def _index(index: dict[str, Any], billing: str) -> dict[str, Any]:
    converted = {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
    if billing == "PROVISIONED":
        converted["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    return converted


def _throughput(throughput: dict[str, Any] | None) -> dict[str, int]:
    throughput = throughput or {}
    return {
        "ReadCapacityUnits": int(throughput.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(throughput.get("WriteCapacityUnits", 5)),
    }


HANDLERS = {
    "AWS::DynamoDB::Table": table,
    "AWS::DynamoDB::GlobalTable": table,
}
