"""Finalize: the records of remote jobs that failed while the job's other remote jobs completed.

They never reached a model's output, so nothing of them can be ingested. Each failed remote job becomes one
file-level dead letter (stage `inference`, its error as the reason) that stands for all its records, as a
job throttled past its retry window does (finish._dead_letter_file): the counts stay exact, and the
dead letter names the prepared input to resubmit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osbatch.contracts import dead_letter_key
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import JobState
from osbatch.steps.remote_jobs import failed_remotes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def dead_letter_failed_parts(state: JobState, s3: S3Client, bucket: str) -> int:
    """Writes the dead letters (a re-run overwrites its own objects); how many records they stand for."""
    prepared = {job.index: job for job in state.prepared.jobs} if state.prepared else {}
    records = 0
    for remote in failed_remotes(state.remotes):
        letters = DeadLetterWriter(
            s3,
            bucket,
            dead_letter_key(state.job_id, "inference", remote.index),
            job_id=state.job_id,
            source=state.source.uri,
        )
        part = prepared.get(remote.index)
        file_level = {
            "file": state.source.uri,
            "records": remote.records,
            "remote_job": remote.arn or remote.id,
            "prepared_input": part.input_uri if part else None,
        }
        reason = f"remote job {remote.id} {remote.state.value}: {remote.reason or 'no reason given'}"
        letters.add(stage="inference", reason=reason, record=file_level)
        letters.close()
        records += remote.records
    return records
