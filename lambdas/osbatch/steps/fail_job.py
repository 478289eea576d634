"""FailJob: a job that ended without finishing (a step failed for good, or the remote jobs ended in a
failure) is recorded with its reason, its running remote jobs are stopped, and every record it will not
index becomes a dead letter: the chunks that never reported from their checkpoints, the remote jobs not
ingested at file level, and, when no chunk ran at all, the file whole.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from osbatch.backends.base import BatchBackend
from osbatch.contracts import INDEX_DEAD_LETTERS, INFERENCE_DEAD_LETTERS, dead_letter_key
from osbatch.dal import JobStore, JobTable
from osbatch.ingest.dead_letter import DeadLetterWriter, Stage
from osbatch.models import JobState, JobStateName, JobStatus, RemoteJob
from osbatch.search.bulk_load import IndexLoad
from osbatch.steps.support.actuals import with_actuals
from osbatch.steps.support.dropped import FAIL_JOB_DIFF_BYTES, dead_letter_dropped
from osbatch.steps.support.failed_parts import dead_letter_remote_jobs
from osbatch.steps.support.report import (
    JobReport,
    Publish,
    build_report,
    store_report,
    unaccounted_records,
)
from osbatch.steps.support.slot_wake import ReleaseSlot, release_only
from osbatch.steps.support.unreported import dead_letter_unreported

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Remote states after which the model output exists: a failure then happened on the way to the index.
INFERRED = frozenset({JobStateName.COMPLETED, JobStateName.PARTIALLY_COMPLETED})
# Said in a failed job's reason when its index's load settings could not be restored (search/bulk_load.py).
UNRESTORED = (
    "the index's refresh_interval and number_of_replicas stay as the load set them until the next job into "
    "it or `osbatch replay` restores them; the restore met"
)


def fail_job(
    state: JobState,
    *,
    backend: BatchBackend | None,
    store: JobStore,
    publish: Publish,
    index_load: IndexLoad | None = None,
    chunked: bool = False,
    release_slot: ReleaseSlot | None = None,
) -> tuple[JobState, JobReport]:
    """backend: None when the job's pipeline is not deployed in this stack (then nothing can be stopped).
    chunked: the pipeline chunks records, so its output was joined at PlanIngest like a joining backend's."""
    jobs, s3 = store.table, store.s3
    status = state.status
    # A failed load must not leave the index unrefreshed and without replicas; a node that does not answer
    # (the very failure, often) leaves that owed to the next job or replay, and the job still ends.
    unrestored = index_load.end_or_owe(jobs, state.job_id) if index_load is not None else None
    reason: str | None
    if state.error is not None:
        # A step failed for good (its retries are spent); the remote job, if any, must not run on unobserved.
        reason = f"{state.error.get('Error', 'Error')}: {_cause(state.error.get('Cause'))}"
        final = JobStateName.FAILED
        if backend is not None and not (status and status.state.terminal):
            for remote in _running_remotes(state, jobs):
                backend.cancel(remote)
    elif status is not None and status.state.terminal:
        final, reason = status.state, status.reason
    else:
        final, reason = JobStateName.FAILED, "the workflow ended without a terminal job state"
    # The Map may have failed after some chunks indexed their documents: those are in the index, and the
    # report says so. Without a plan no chunk ran, and any chunk items are not this run's.
    tally = jobs.chunk_totals(state.job_id, state.plan.chunks if state.plan else 0)
    if final is JobStateName.FAILED and dead_letter_unreported(
        state, tally, why=f"the job failed ({reason or final.value})", store=store
    ):
        tally = jobs.chunk_totals(state.job_id, state.plan.chunks if state.plan else 0)
    ending = JobStatus(state=final, reason=reason)
    report = build_report(state, ending, tally, unaccounted_records(state, tally), store.dead_letter_bucket)
    if state.plan is None and state.prepared is not None and state.prepared.valid > 0:
        report = _dead_letter_file(state, report, s3, store.dead_letter_bucket)
    elif state.plan is not None:
        # Some remote jobs' output was ingested; the others' records (still running and now stopped,
        # failed, or finished after the failure) will never be: one file-level letter each.
        left = [remote for remote in state.remotes if not remote.ingested]
        letters = dead_letter_remote_jobs(
            state, left, s3, store.dead_letter_bucket, job_reason=reason or final.value
        )
        report = replace(
            report, dead_lettered=report.dead_lettered + letters, unaccounted=report.unaccounted - letters
        )
        # The remote jobs ingested before the failure may lack records, as in Finalize.
        if backend is not None and not (backend.joins_source or chunked) and report.unaccounted > 0:
            dropped = dead_letter_dropped(state, tally, store=store, budget_bytes=FAIL_JOB_DIFF_BYTES)
            report = replace(
                report, dead_lettered=report.dead_lettered + dropped, unaccounted=report.unaccounted - dropped
            )
    if unrestored is not None:  # said after the dead letters, whose reason is the job's failure alone
        ending = JobStatus(state=final, reason=f"{reason or final.value}; {UNRESTORED}: {unrestored}")
        report = replace(report, reason=ending.reason)
    report = with_actuals(report, state, jobs=jobs, backend=backend)
    store_report(report, store, publish)
    # Failures and cancels free the slot too, and wake the next waiting job.
    (release_slot or release_only(jobs))(state.pipeline, state.job_id)
    return state.model_copy(update={"status": ending}), report


def _running_remotes(state: JobState, jobs: JobTable) -> list[RemoteJob]:
    """The remote jobs that may still run. A step that failed before returning (StartJob past its retries,
    after creating some) left them out of the state; StartJob recorded each in the job table as it went."""
    if state.remotes:
        return [remote for remote in state.remotes if not remote.state.terminal]
    recorded = (jobs.get(state.job_id) or {}).get("remote_jobs") or []
    return [RemoteJob(id=ref["id"], arn=ref.get("arn", ""), output_uri=ref["output_uri"]) for ref in recorded]


def _dead_letter_file(state: JobState, report: JobReport, s3: S3Client, bucket: str) -> JobReport:
    """The job failed before any ingest chunk ran (throttled past retry_time_window, a failed, expired,
    unreachable or cancelled remote job, a failed PlanIngest): none of its valid records is indexed, so
    the file is set aside whole, with the failure, as one dead letter that stands for its valid records
    (parse failures keep their own). File level, not per record: FailJob has a minute, and a job's input
    can be gigabytes; the letter names the prepared input (and the model output, if any) that hold them.
    Stage `inference` unless the model had finished: then the records failed on their way to the index."""
    assert state.prepared is not None
    valid = state.prepared.valid
    inferred = state.status is not None and state.status.state in INFERRED
    stage: Stage = "index" if inferred else "inference"
    folder = INDEX_DEAD_LETTERS if inferred else INFERENCE_DEAD_LETTERS
    letters = DeadLetterWriter(
        s3, bucket, dead_letter_key(state.job_id, folder, 0), job_id=state.job_id, source=state.source.uri
    )
    file_level: dict[str, Any] = {
        "file": state.source.uri,
        "records": valid,
        "prepared_input": state.prepared.input_uri,
    }
    if state.remotes:
        file_level["model_output"] = [remote.output_uri for remote in state.remotes]
    letters.add(stage=stage, reason=report.reason or report.state, record=file_level)
    letters.close()
    return replace(report, dead_lettered=report.dead_lettered + valid, unaccounted=report.unaccounted - valid)


def _cause(cause: Any) -> str:
    """Step Functions passes a Lambda error's Cause as a JSON string; the message is what people read."""
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            return str(parsed["errorMessage"])
    return str(cause)
