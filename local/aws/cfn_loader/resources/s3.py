"""AWS::S3::Bucket, AWS::S3::BucketPolicy and CDK's Custom::S3BucketNotifications."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code


def bucket(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    s3 = ctx.client("s3")
    name = props.get("BucketName") or ctx.physical_name(logical_id, max_length=63, lowercase=True)
    try:
        s3.head_bucket(Bucket=name)
        action = "exists"
    except ClientError as error:
        if error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        extra = (
            {}
            if ctx.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
        )
        s3.create_bucket(Bucket=name, **extra)
        action = "created"
    _configure(ctx, name, props)
    attributes = {
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
        "DualStackDomainName": f"{name}.s3.dualstack.{ctx.region}.amazonaws.com",
        "WebsiteURL": f"http://{name}.s3-website-{ctx.region}.amazonaws.com",
    }
    return Created(name, attributes, action)


def _configure(ctx: DeployContext, name: str, props: dict[str, Any]) -> None:
    s3 = ctx.client("s3")
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "BucketEncryption" in props:
        rules = [
            encryption_rule(rule) for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "NotificationConfiguration" in props:
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration=notification_configuration(props["NotificationConfiguration"]),
        )
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
    ignored = sorted(set(props) & {"LifecycleConfiguration", "CorsConfiguration", "LoggingConfiguration"})
    if ignored:
        ctx.note_once(
            "bucket-settings", f"bucket {', '.join(ignored)} not applied (no effect in the emulator)"
        )


def encryption_rule(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ServerSideEncryptionRule -> the PutBucketEncryption rule shape."""
    rule = {k: v for k, v in cfn.items() if k != "ServerSideEncryptionByDefault"}
    if "ServerSideEncryptionByDefault" in cfn:
        rule["ApplyServerSideEncryptionByDefault"] = cfn["ServerSideEncryptionByDefault"]
    return rule


def notification_configuration(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration shape -> the PutBucketNotificationConfiguration shape.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-s3-bucket-notificationconfiguration.html
    """
    result: dict[str, Any] = {}
    if cfn.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled") in (True, "true"):
        result["EventBridgeConfiguration"] = {}
    for cfn_key, api_key, target_key, arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        entries = []
        for entry in cfn.get(cfn_key, []):
            converted: dict[str, Any] = {arn_key: entry[target_key], "Events": [entry["Event"]]}
            rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                converted["Filter"] = {"Key": {"FilterRules": rules}}
            entries.append(converted)
        if entries:
            result[api_key] = entries
    return result


def bucket_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props["Bucket"]
    ctx.client("s3").put_bucket_policy(Bucket=name, Policy=json.dumps(props["PolicyDocument"]))
    return Created(f"{name}-policy", {}, "applied")


def bucket_notifications(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    """CDK's notification custom resource, applied directly instead of running its provider Lambda.

    Its NotificationConfiguration is already in the API shape, including EventBridgeConfiguration.
    """
    name = props["BucketName"]
    configuration = {k: v for k, v in props.get("NotificationConfiguration", {}).items() if v}
    if "EventBridgeConfiguration" in props.get("NotificationConfiguration", {}):
        configuration["EventBridgeConfiguration"] = {}
    ctx.client("s3").put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration=configuration
    )
    return Created(f"{name}-notifications", {}, "applied")


HANDLERS = {
    "AWS::S3::Bucket": bucket,
    "AWS::S3::BucketPolicy": bucket_policy,
    "Custom::S3BucketNotifications": bucket_notifications,
}
