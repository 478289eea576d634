"""Reading back a job's ingest plans: every plan's chunk items, for the Finalize and FailJob steps that
settle chunks (steps/support/unreported.py) or compare them with the input (steps/support/dropped.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from osbatch.contracts import plan_key, plan_name
from osbatch.models import IngestPlan

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def plan_items(s3: S3Client, job_id: str, plan: IngestPlan) -> list[dict[str, Any]]:
    """The chunk items of plans 0 .. plan.number (one per finished remote job), in chunk order."""
    return [
        item
        for number in range(plan.number + 1)
        for item in json.loads(
            s3.get_object(Bucket=plan.bucket, Key=plan_key(job_id, plan_name(number)))["Body"].read()
        )
    ]
