"""The records of remote jobs whose output will never be ingested: in Finalize, those that failed while the
job's other remote jobs completed; in FailJob, every one not yet ingested when the job ended.

Each such remote job becomes one file-level dead letter (stage `inference`; the remote job's own error, or
the job's failure) that stands for all its records, as a job throttled past its retry window does
(finish._dead_letter_file): the counts stay exact, and the dead letter names the prepared input to resubmit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from osbatch.contracts import remote_job_dead_letter_key
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import JobState, RemoteJob
from osbatch.steps.support.remote_jobs import failed_remotes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def dead_letter_failed_parts(state: JobState, s3: S3Client, bucket: str) -> int:
    """Finalize's case; how many records the letters stand for."""
    return dead_letter_remote_jobs(state, failed_remotes(state.remotes), s3, bucket)


def dead_letter_remote_jobs(
    state: JobState, remotes: Sequence[RemoteJob], s3: S3Client, bucket: str, *, job_reason: str | None = None
) -> int:
    """Writes the dead letters (a re-run overwrites its own objects); how many records they stand for.
    `job_reason`, when the job itself failed, is the reason for remote jobs that did not fail themselves."""
    prepared = {job.index: job for job in state.prepared.jobs} if state.prepared else {}
    records = 0
    for remote in remotes:
        letters = DeadLetterWriter(
            s3,
            bucket,
            remote_job_dead_letter_key(state.job_id, remote.index),
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
        own = remote.state.terminal and not remote.succeeded
        reason = (
            f"remote job {remote.id} {remote.state.value}: {remote.reason or 'no reason given'}"
            if own or job_reason is None
            else f"not ingested: the job ended ({job_reason})"
        )
        letters.add(stage="inference", reason=reason, record=file_level)
        letters.close()
        records += remote.records
    return records
