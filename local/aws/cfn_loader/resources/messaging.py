"""AWS::SQS::Queue, AWS::SQS::QueuePolicy, AWS::SNS::Topic, AWS::SNS::Subscription, AWS::SNS::TopicPolicy."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, as_text, error_code, tags_dict

# CloudFormation properties that are SQS queue attributes of the same name.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queue.html
_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def queue(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    sqs = ctx.client("sqs")
    fifo = as_text(props.get("FifoQueue", False)) == "true"
    name = props.get("QueueName") or ctx.physical_name(logical_id, max_length=75) + (".fifo" if fifo else "")
    attributes = {
        key: json.dumps(value) if isinstance(value, dict) else as_text(value)
        for key, value in props.items()
        if key in _QUEUE_ATTRIBUTES
    }
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        updatable = {k: v for k, v in attributes.items() if k not in ("FifoQueue",)}
        if updatable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=updatable)
        action = "exists"
    except ClientError as error:
        if "NonExistentQueue" not in error_code(error) and "QueueDoesNotExist" not in error_code(error):
            raise
        tags = tags_dict(props.get("Tags"))
        url = sqs.create_queue(QueueName=name, Attributes=attributes, **({"tags": tags} if tags else {}))[
            "QueueUrl"
        ]
        action = "created"
    arn = ctx.arn("sqs", name)
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url}, action)


def queue_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    for url in props["Queues"]:
        ctx.client("sqs").set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )
    return Created(ctx.physical_name(logical_id), {}, "applied")


def topic(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    sns = ctx.client("sns")
    fifo = as_text(props.get("FifoTopic", False)) == "true"
    name = props.get("TopicName") or ctx.physical_name(logical_id, max_length=250) + (".fifo" if fifo else "")
    attributes = {
        key: as_text(props[key])
        for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
        if key in props
    }
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]  # idempotent by name
    for subscription in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Created(arn, {"TopicArn": arn, "TopicName": name}, "applied")


def subscription(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    attributes = {
        key: json.dumps(props[key]) if isinstance(props[key], dict) else as_text(props[key])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in props
    }
    arn = ctx.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props.get("Endpoint", ""),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Created(arn, {"Arn": arn}, "applied")


def topic_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    for arn in props["Topics"]:
        ctx.client("sns").set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
        )
    return Created(ctx.physical_name(logical_id), {}, "applied")


HANDLERS = {
    "AWS::SQS::Queue": queue,
    "AWS::SQS::QueuePolicy": queue_policy,
    "AWS::SNS::Topic": topic,
    "AWS::SNS::Subscription": subscription,
    "AWS::SNS::TopicPolicy": topic_policy,
}
