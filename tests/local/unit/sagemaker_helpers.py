"""Helpers of the SageMaker emulator's tests: input objects, a transform job request, its end and output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tests.helpers import eventually

REGION = "us-east-1"
BUCKET = "osb-data"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
TERMINAL = {"Completed", "Failed", "Stopped"}


def put_lines(s3: Any, key: str, lines: Sequence[Any], raw: Sequence[str] = ()) -> None:
    """Each of lines as JSON, then each of raw as it is (for lines that must not be valid JSON)."""
    body = "".join(json.dumps(line) + "\n" for line in lines) + "".join(line + "\n" for line in raw)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode("utf-8"))


def start_job(sagemaker: Any, name: str = "job-1", **overrides: Any) -> None:
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": "minilm",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/"}},
            "ContentType": "application/json",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "DataProcessing": {"InputFilter": "$.text", "JoinSource": "Input", "OutputFilter": "$"},
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
    }
    request.update(overrides)
    sagemaker.create_transform_job(**request)


def wait_for_end(sagemaker: Any, name: str = "job-1") -> dict[str, Any]:
    """The transform job's description once it ended (the emulator runs it on a thread)."""

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = sagemaker.describe_transform_job(TransformJobName=name)
        return job if job["TransformJobStatus"] in TERMINAL else None

    found: dict[str, Any] = eventually(ended, timeout=60, interval=0.05, what=f"the end of {name}")
    return found


def output_lines(s3: Any, key: str) -> list[Any]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8")
    return [json.loads(line) for line in body.splitlines()]


def output_keys(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents", [])]
