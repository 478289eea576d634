"""Where a job's data lives: its items in the job table and its objects in the stack's two buckets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from osbatch.dal.job_table import JobTable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class JobStore:
    """The port the workflow steps read and write a job through (built by handlers/wiring.py)."""

    table: JobTable
    s3: S3Client
    output_bucket: str  # prepared input, model output, plans and reports (contracts.job_prefix)
    dead_letter_bucket: str  # records set aside (contracts.dead_letter_prefix)
