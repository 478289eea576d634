"""Handlers that test the sandbox's limits: timeout, memory, crashes, reserved concurrency, overlap."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Overruns its timeout unless told not to; the sandbox must be killed, not waited for."""
    while event.get("sleep", True):
        time.sleep(0.1)
    return {"slept": False}


def hungry(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Touches memory 8 MiB at a time until it has `megabytes` (default: far past its MemorySize)."""
    hoard = []
    for _ in range(int(event.get("megabytes", 4096)) // 8):
        hoard.append(bytearray(8 * 1024 * 1024))  # zero-filled, so every page is resident
    return {"held_mb": 8 * len(hoard)}


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Ends its own process, as a segfault in a native library would; Lambda reports Runtime.ExitError."""
    if event.get("crash", True):
        os._exit(3)
    return {"pid": os.getpid()}


def gate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Says it started, then holds its sandbox until the test writes the release object."""
    s3, bucket, key = boto3.client("s3"), os.environ["BUCKET"], f"gate/{event['run']}"
    s3.put_object(Bucket=bucket, Key=f"{key}/started", Body=b"")
    while "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"{key}/release"):
        time.sleep(0.05)
    return {"released": True}


def overlap(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One Distributed Map item: records when it ran. It waits (within its timeout) until a second item has
    started, so items that run at once are seen to overlap however slowly sandboxes start."""
    s3, bucket = boto3.client("s3"), os.environ["BUCKET"]
    prefix = f"overlap/{event['run']}"
    started = time.time()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/started/{event['item']}", Body=b"")
    while context.get_remaining_time_in_millis() > 2000:
        if len(s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/started/").get("Contents", [])) >= 2:
            break
        time.sleep(0.05)
    record = {"item": event["item"], "start": started, "end": time.time(), "pid": os.getpid()}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/ran/{event['item']}.json", Body=json.dumps(record))
    return record
