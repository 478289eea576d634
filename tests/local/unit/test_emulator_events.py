"""The SageMaker and Bedrock emulators announce each state change on the default bus, as the services do,
and the terminal events match the wake rules' patterns (written out here from the AWS pages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulators.faults import FAULTS
from osbatch.backends.bedrock import BedrockBackend
from osbatch.config import BedrockJobConfig
from tests.helpers import eventually

REGION = "us-east-1"
BUCKET = "osb-data"
ROLE = "arn:aws:iam::123456789012:role/jobs"
WAKE_PATTERNS = {
    "sagemaker": {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Transform Job State Change"],
        "detail": {
            "TransformJobName": [{"prefix": "osb-"}],
            "TransformJobStatus": ["Completed", "Failed", "Stopped"],
        },
    },
    "bedrock": {
        "source": ["aws.bedrock"],
        "detail-type": ["Batch Inference Job State Change"],
        "detail": {
            "batchJobName": [{"prefix": "osb-"}],
            "status": ["Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"],
        },
    },
}


@pytest.fixture
def bus(emulators: None) -> Iterator[dict[str, Any]]:
    """Two rules per service on the default bus, into queues: every event, and the wake rule's."""
    FAULTS.update(min_records_per_job=1)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        text = "".join(json.dumps({"_id": f"d{n}", "text": f"text {n}"}) + "\n" for n in range(3))
        s3.put_object(Bucket=BUCKET, Key="in/part-00000.jsonl", Body=text.encode())
        queues = {}
        for service, pattern in WAKE_PATTERNS.items():
            every = {key: pattern[key] for key in ("source", "detail-type")}
            for kind, rule_pattern in (("every", every), ("wake", pattern)):
                name = f"{service}-{kind}"
                url = sqs.create_queue(QueueName=name)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
                events.put_rule(Name=name, EventPattern=json.dumps(rule_pattern))
                events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])
                queues[name] = url
        yield {"s3": s3, "sqs": sqs, "queues": queues}


def received(bus: dict[str, Any], queue: str, until_status: str, status_of: Any) -> list[dict[str, Any]]:
    """The events the queue got, read until one with until_status arrives (the job runs on a thread)."""
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        response = bus["sqs"].receive_message(QueueUrl=bus["queues"][queue], MaxNumberOfMessages=10)
        found.extend(json.loads(message["Body"]) for message in response.get("Messages", []))
        return any(status_of(event) == until_status for event in found)

    try:
        eventually(arrived, timeout=30, interval=0.05, what=f"a {until_status} event in {queue}")
    except AssertionError as error:
        raise AssertionError(f"{error}: {found}") from None
    return found


def test_a_transform_job_announces_its_states_and_its_completion_matches_the_wake_rule(
    bus: dict[str, Any],
) -> None:
    # Given a SageMaker model
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_model(ModelName="minilm", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "local"})
    # When an osbatch transform job runs to its end
    name = "osb-docs-0123456789abcdef"
    sagemaker.create_transform_job(
        TransformJobName=name,
        ModelName="minilm",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/"}},
            "ContentType": "application/json",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        DataProcessing={"InputFilter": "$.text", "JoinSource": "Input", "OutputFilter": "$"},
    )

    def status(event: dict[str, Any]) -> str:
        return str(event["detail"]["TransformJobStatus"])

    every = received(bus, "sagemaker-every", "Completed", status)
    # Then it announced InProgress, then Completed, in SageMaker's shape
    assert [status(event) for event in every] == ["InProgress", "Completed"]
    done = every[-1]
    arn = sagemaker.describe_transform_job(TransformJobName=name)["TransformJobArn"]
    assert (done["source"], done["detail-type"], done["resources"]) == (
        "aws.sagemaker",
        "SageMaker Transform Job State Change",
        [arn],
    )
    assert done["detail"]["TransformJobName"] == name and done["detail"]["TransformJobArn"] == arn
    assert done["detail"]["TransformEndTime"].endswith("Z") and "FailureReason" not in done["detail"]
    # And the wake rule's pattern lets through the completion only
    assert [status(e) for e in received(bus, "sagemaker-wake", "Completed", status)] == ["Completed"]


def test_a_bedrock_batch_job_announces_its_states_and_its_completion_matches_the_wake_rule(
    bus: dict[str, Any],
) -> None:
    # Given a prepared Bedrock job input
    settings = BedrockJobConfig.model_validate(
        {"model_id": "amazon.titan-embed-text-v2:0", "family": "titan-embed-text-v2", "dimensions": 256}
    )
    job = BedrockBackend(settings, boto3.client("bedrock", region_name=REGION), bus["s3"], {}, role_arn=ROLE)
    lines = "".join(json.dumps(job.input_line({}, n, f"text {n}")) + "\n" for n in range(1, 4))
    bus["s3"].put_object(Bucket=BUCKET, Key="jobs/j/input/part-00000.jsonl", Body=lines.encode())
    # When the job runs to its end
    remote = job.submit(
        "osb-docs-0123456789abcdef", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/out/"
    )

    def status(event: dict[str, Any]) -> str:
        return str(event["detail"]["status"])

    every = received(bus, "bedrock-every", "Completed", status)
    # Then it announced InProgress, then Completed, in Bedrock's shape
    assert [status(event) for event in every] == ["InProgress", "Completed"]
    done = every[-1]
    assert (done["source"], done["detail-type"], done["resources"]) == (
        "aws.bedrock",
        "Batch Inference Job State Change",
        [remote.arn],
    )
    assert {
        key: done["detail"][key] for key in ("batchJobName", "batchJobArn", "batchModelId", "accountId")
    } == {
        "batchJobName": "osb-docs-0123456789abcdef",
        "batchJobArn": remote.arn,
        "batchModelId": "amazon.titan-embed-text-v2:0",
        "accountId": "123456789012",
    }
    # And the wake rule's pattern lets through the completion only
    assert [status(e) for e in received(bus, "bedrock-wake", "Completed", status)] == ["Completed"]
