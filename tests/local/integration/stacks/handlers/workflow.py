"""The test workflow's tasks."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


class BackendThrottled(Exception):
    """A custom error the workflow retries and then catches by name."""


def step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {**event, "stepped_by": context.function_name}


def chunk(event: dict[str, Any], context: Any) -> dict[str, Any]:
    item = event["item"]
    boto3.client("s3").put_object(
        Bucket=os.environ["BUCKET"], Key=f"chunks/{event['job']}/{item['n']}.json", Body=json.dumps(item)
    )
    return {"n": item["n"]}


def throttled(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = os.environ["BUCKET"]
    s3 = boto3.client("s3")
    attempts = len(
        s3.list_objects_v2(Bucket=bucket, Prefix=f"attempts/{event['job_id']}/").get("Contents", [])
    )
    s3.put_object(Bucket=bucket, Key=f"attempts/{event['job_id']}/{attempts}", Body=b"")
    raise BackendThrottled(f"attempt {attempts + 1}: the backend is throttling")
