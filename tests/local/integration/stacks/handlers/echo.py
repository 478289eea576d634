"""SQS consumer of S3 `Object Created` events: marks the object and starts one workflow execution.

Objects whose key contains "poison" fail, reported through a partial batch response.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        try:
            _process(json.loads(record["body"]), context)
        except Exception:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def _process(s3_event: dict[str, Any], context: Any) -> None:
    bucket = s3_event["detail"]["bucket"]["name"]
    key = s3_event["detail"]["object"]["key"]
    if "poison" in key:
        raise ValueError(f"refusing {key}")
    s3 = boto3.client("s3")
    lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    job_id = key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    items_key = f"items/{job_id}.json"
    s3.put_object(Bucket=bucket, Key=items_key, Body=json.dumps([json.loads(line) for line in lines if line]))
    marker = {
        "event": s3_event,
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "greeting": os.environ.get("GREETING"),
        "search_endpoint": os.environ.get("SEARCH_ENDPOINT"),
    }
    s3.put_object(Bucket=bucket, Key=f"markers/{job_id}.json", Body=json.dumps(marker))
    boto3.client("stepfunctions").start_execution(
        stateMachineArn=os.environ["STATE_MACHINE_ARN"],
        name=job_id,
        input=json.dumps(
            {
                "job_id": job_id,
                "bucket": bucket,
                "items_key": items_key,
                "mode": "fail" if job_id.startswith("fail") else "map",
                "wait_seconds": 1,
            }
        ),
    )
