"""PlanIngest, Finalize and FailJob: from finished inference to an accounted-for index.

Conservation is checked here: records_in = indexed + dead_lettered. Records that the backend silently
dropped (sent to the model, absent from its output) break that equation; the job then ends
PARTIALLY_COMPLETED and the report names how many are unaccounted for, rather than claiming success.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from osbatch.backends.base import BatchBackend
from osbatch.config import PipelineConfig
from osbatch.ingest.readers import plan_chunks
from osbatch.jobs import JobTable, utc_now
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus
from osbatch.search.index import ensure_index
from osbatch.steps.prepare import job_prefix

DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024  # one ingest Lambda streams and bulks this in well under a minute


@dataclass(frozen=True)
class JobReport:
    job_id: str
    pipeline: str
    state: str
    source: str
    records_in: int
    indexed: int
    dead_lettered: int
    unaccounted: int
    reason: str | None
    remote_job: str | None
    dead_letter_uri: str
    finished_at: str


def plan_ingest(
    state: JobState,
    *,
    config: PipelineConfig,
    backend: BatchBackend,
    s3: Any,
    opensearch: Any,
    jobs: JobTable,
    output_bucket: str,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> JobState:
    assert state.remote is not None, "PlanIngest runs after the job completed"
    ensure_index(opensearch, config.sink.index, config.sink.mapping)
    outputs = backend.outputs(state.remote)
    chunks = plan_chunks([(output.key, output.size) for output in outputs], chunk_bytes)
    items = [{"chunk": number, "bucket": outputs[0].bucket, **chunk} for number, chunk in enumerate(chunks)]
    key = f"{job_prefix(state.job_id)}chunks.json"
    # The Distributed Map reads this array itself, so the plan never passes through the state payload.
    s3.put_object(Bucket=output_bucket, Key=key, Body=json.dumps(items).encode())
    jobs.update(state.job_id, JobStateName.INGESTING, output_objects=len(outputs), chunks=len(items))
    plan = IngestPlan(bucket=output_bucket, key=key, chunks=len(items), objects=len(outputs))
    return state.model_copy(update={"plan": plan})


def finalize_job(
    state: JobState,
    *,
    jobs: JobTable,
    s3: Any,
    output_bucket: str,
    dead_letter_bucket: str,
    publish: Callable[[dict[str, Any]], None],
) -> tuple[JobState, JobReport]:
    prepared = state.prepared
    assert prepared is not None, "Finalize runs after Prepare"
    totals, _ = jobs.chunk_totals(state.job_id)
    indexed = totals.indexed
    dead_lettered = prepared.dead_lettered + totals.dead_lettered
    unaccounted = prepared.records_in - indexed - dead_lettered
    remote_partial = state.status is not None and state.status.state is JobStateName.PARTIALLY_COMPLETED
    if unaccounted or remote_partial:
        final = JobStateName.PARTIALLY_COMPLETED
        reason = (
            f"{unaccounted} records sent to the model are missing from its output"
            if unaccounted
            else (state.status.reason if state.status else None)
        )
    else:
        final, reason = JobStateName.COMPLETED, None
    report = _report(state, final, reason, indexed, dead_lettered, unaccounted, dead_letter_bucket)
    _store(report, jobs, s3, output_bucket, publish)
    return state.model_copy(update={"status": JobStatus(state=final, reason=reason)}), report


def fail_job(
    state: JobState,
    *,
    backend: BatchBackend | None,
    jobs: JobTable,
    s3: Any,
    output_bucket: str,
    dead_letter_bucket: str,
    publish: Callable[[dict[str, Any]], None],
) -> tuple[JobState, JobReport]:
    status = state.status
    reason: str | None
    if state.error is not None:
        # A step failed for good (its retries are spent); the remote job, if any, must not run on unobserved.
        reason = f"{state.error.get('Error', 'Error')}: {_cause(state.error.get('Cause'))}"
        final = JobStateName.FAILED
        if backend is not None and state.remote is not None and not (status and status.state.terminal):
            backend.cancel(state.remote)
    elif status is not None and status.state.terminal:
        final, reason = status.state, status.reason
    else:
        final, reason = JobStateName.FAILED, "the workflow ended without a terminal job state"
    prepared = state.prepared
    dead = prepared.dead_lettered if prepared else 0
    records_in = prepared.records_in if prepared else 0
    report = _report(state, final, reason, 0, dead, records_in - dead, dead_letter_bucket)
    _store(report, jobs, s3, output_bucket, publish)
    return state.model_copy(update={"status": JobStatus(state=final, reason=reason)}), report


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


def _report(
    state: JobState,
    final: JobStateName,
    reason: str | None,
    indexed: int,
    dead_lettered: int,
    unaccounted: int,
    dead_letter_bucket: str,
) -> JobReport:
    return JobReport(
        job_id=state.job_id,
        pipeline=state.pipeline,
        state=final.value,
        source=state.source.uri,
        records_in=state.prepared.records_in if state.prepared else 0,
        indexed=indexed,
        dead_lettered=dead_lettered,
        unaccounted=unaccounted,
        reason=reason,
        remote_job=state.remote.arn if state.remote else None,
        dead_letter_uri=f"s3://{dead_letter_bucket}/dead-letter/{state.job_id}/",
        finished_at=utc_now(),
    )


def _store(
    report: JobReport, jobs: JobTable, s3: Any, output_bucket: str, publish: Callable[[dict[str, Any]], None]
) -> None:
    body = asdict(report)
    key = f"reports/{report.job_id}.json"
    s3.put_object(Bucket=output_bucket, Key=key, Body=json.dumps(body, indent=2).encode())
    jobs.update(
        report.job_id,
        JobStateName(report.state),
        records_in=report.records_in,
        indexed=report.indexed,
        dead_lettered=report.dead_lettered,
        unaccounted=report.unaccounted,
        reason=report.reason,
        finished_at=report.finished_at,
        report=f"s3://{output_bucket}/{key}",
    )
    publish(body)
