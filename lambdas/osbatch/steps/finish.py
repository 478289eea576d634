"""PlanIngest, Finalize and FailJob: from finished inference to an accounted-for index.

Conservation is checked here: records_in = indexed + dead_lettered. Whatever breaks it is reported as
`unaccounted`, never hidden: records the backend silently dropped (sent to the model, absent from its
output), chunks of the ingest plan that never reported, and the valid records of a job that failed
before they were indexed. A finished job with any of these ends PARTIALLY_COMPLETED, not COMPLETED.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from osbatch.backends.base import BatchBackend
from osbatch.config import PipelineConfig
from osbatch.contracts import (
    dead_letter_key,
    dead_letter_prefix,
    job_joined_prefix,
    job_source_prefix,
    plan_key,
    plan_name,
    report_key,
)
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import plan_chunks
from osbatch.jobs import ChunkTally, JobTable, utc_now
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus, RemoteJob
from osbatch.search.bulk_load import IndexLoad, begin_bulk_load
from osbatch.search.index import ensure_compatible_index
from osbatch.steps.failed_parts import dead_letter_failed_parts
from osbatch.steps.join import join_outputs
from osbatch.steps.remote import THROTTLED_ERRORS
from osbatch.steps.unreported import dead_letter_unreported

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024  # one ingest Lambda streams and bulks this in well under a minute
MISSING_CHUNKS_SHOWN = 10
# A plan's document versions are its time in seconds above 32 bits of input line: a later plan (a re-upload,
# a re-run) outranks every line of an earlier one, and 2^31 seconds of plans fit a signed 64-bit version.
LINE_BITS = 32  # a reason names this many missing chunks, then says how many more


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
    duplicate_ids: int
    chunks_planned: int
    chunks_reported: int
    reason: str | None
    remote_jobs: list[str]
    dead_letter_uri: str
    finished_at: str


Publish = Callable[[dict[str, Any]], None]


def plan_ingest(
    state: JobState,
    *,
    config: PipelineConfig,
    backend: BatchBackend,
    s3: S3Client,
    opensearch: OpenSearch,
    jobs: JobTable,
    output_bucket: str,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    clock: Callable[[], float] = time.time,
) -> JobState:
    assert state.remotes, "PlanIngest runs after StartJob"
    # Prepare created or checked the index before the job was paid for; a job can run for days, so check
    # again (one request) rather than bulk into an index someone deleted or remapped meanwhile.
    ensure_compatible_index(opensearch, config.sink.index, config.sink.mapping)
    if config.sink.bulk.relax_new_index:
        begin_bulk_load(opensearch, jobs, config.sink.index, state.job_id)
        if state.plan is not None:
            # A relaxed index (refresh_interval -1) shows nothing until refreshed: the earlier remote jobs'
            # documents become searchable now, as each later one starts ingesting, not only at Finalize.
            opensearch.indices.refresh(index=config.sink.index)
    # Only the remote jobs that finished since the last plan: each remote job's output is planned once.
    ready = [remote for remote in state.remotes if remote.succeeded and not remote.ingested]
    outputs = [output for remote in ready for output in backend.outputs(remote)]
    if backend.joins_source:
        outputs = join_outputs(
            backend,
            s3,
            outputs,
            source_bucket=output_bucket,
            source_prefix=job_source_prefix(state.job_id),
            joined_prefix=job_joined_prefix(state.job_id),
        )
    previous = state.plan
    # Chunk numbers continue after the earlier plans', so the chunk items 0 .. chunks - 1 are every plan's.
    first = previous.chunks if previous else 0
    number = previous.number + 1 if previous else 0
    chunks = plan_chunks([(output.key, output.size) for output in outputs], chunk_bytes)
    version_base = int(clock()) << LINE_BITS
    items = [
        {"chunk": first + offset, "bucket": output_bucket, "version_base": version_base, **chunk}
        for offset, chunk in enumerate(chunks)
    ]
    key = plan_key(state.job_id, plan_name(number))
    # The Distributed Map reads this array itself, so the plan never passes through the state payload.
    s3.put_object(Bucket=output_bucket, Key=key, Body=json.dumps(items).encode())
    total = first + len(items)
    objects = (previous.objects if previous else 0) + len(outputs)
    jobs.update(state.job_id, JobStateName.INGESTING, output_objects=objects, chunks=total)
    plan = IngestPlan(
        bucket=output_bucket,
        key=key,
        chunks=total,
        objects=objects,
        first=first,
        number=number,
        tolerated_failure_percentage=config.sink.tolerated_chunk_failure_percentage,
    )
    remotes = [
        remote.model_copy(update={"ingested": True}) if remote in ready else remote
        for remote in state.remotes
    ]
    status = state.status.model_copy(update={"ready": 0}) if state.status else None
    return state.model_copy(update={"plan": plan, "remotes": remotes, "status": status})


def finalize_job(
    state: JobState,
    *,
    jobs: JobTable,
    s3: S3Client,
    output_bucket: str,
    dead_letter_bucket: str,
    publish: Publish,
    index_load: IndexLoad | None = None,
) -> tuple[JobState, JobReport]:
    assert state.prepared is not None, "Finalize runs after Prepare"
    if index_load is not None:
        index_load.end(jobs, state.job_id)  # before the report: a job is done once its index is searchable
    planned = state.plan.chunks if state.plan else 0
    tally = jobs.chunk_totals(state.job_id, planned)
    # Remote jobs that failed while others completed: their records never reached a model's output.
    failed_parts = dead_letter_failed_parts(state, s3, dead_letter_bucket)
    unaccounted = _unaccounted(state, tally) - failed_parts
    reasons = _shortfalls(tally.missing(planned), planned, unaccounted, state.plan)
    if state.status is not None and state.status.state is JobStateName.PARTIALLY_COMPLETED:
        reasons.insert(0, state.status.reason or "the inference job completed partially")
    final = JobStateName.PARTIALLY_COMPLETED if reasons else JobStateName.COMPLETED
    reason = "; ".join(reasons) or None
    report = _report(state, final, reason, tally, unaccounted, dead_letter_bucket)
    report = replace(report, dead_lettered=report.dead_lettered + failed_parts)
    _store(report, jobs, s3, output_bucket, publish)
    jobs.release_slot(state.pipeline, state.job_id)
    return state.model_copy(update={"status": JobStatus(state=final, reason=reason)}), report


def fail_job(
    state: JobState,
    *,
    backend: BatchBackend | None,
    jobs: JobTable,
    s3: S3Client,
    output_bucket: str,
    dead_letter_bucket: str,
    publish: Publish,
    index_load: IndexLoad | None = None,
) -> tuple[JobState, JobReport]:
    status = state.status
    if index_load is not None:
        # A failed load must not leave the index unrefreshed and without replicas.
        index_load.end(jobs, state.job_id)
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
        state, tally, reason=reason or final.value, jobs=jobs, s3=s3, dead_letter_bucket=dead_letter_bucket
    ):
        tally = jobs.chunk_totals(state.job_id, state.plan.chunks if state.plan else 0)
    report = _report(state, final, reason, tally, _unaccounted(state, tally), dead_letter_bucket)
    if state.error is not None and state.error.get("Error") in THROTTLED_ERRORS and state.prepared:
        report = _dead_letter_file(state, report, s3, dead_letter_bucket)
    _store(report, jobs, s3, output_bucket, publish)
    jobs.release_slot(state.pipeline, state.job_id)  # failures and cancels free the slot too
    return state.model_copy(update={"status": JobStatus(state=final, reason=reason)}), report


def _running_remotes(state: JobState, jobs: JobTable) -> list[RemoteJob]:
    """The remote jobs that may still run. A step that failed before returning (StartJob past its retries,
    after creating some) left them out of the state; StartJob recorded each in the job table as it went."""
    if state.remotes:
        return [remote for remote in state.remotes if not remote.state.terminal]
    recorded = (jobs.get(state.job_id) or {}).get("remote_jobs") or []
    return [RemoteJob(id=ref["id"], arn=ref.get("arn", ""), output_uri=ref["output_uri"]) for ref in recorded]


def _dead_letter_file(state: JobState, report: JobReport, s3: S3Client, bucket: str) -> JobReport:
    """Throttled past retry_time_window: no record reached a model, so the file is set aside whole, with
    the last error, as one dead letter that stands for its valid records (parse failures keep their own)."""
    assert state.prepared is not None
    valid = state.prepared.valid
    letters = DeadLetterWriter(
        s3,
        bucket,
        dead_letter_key(state.job_id, "inference", 0),
        job_id=state.job_id,
        source=state.source.uri,
    )
    file_level = {"file": state.source.uri, "records": valid, "prepared_input": state.prepared.input_uri}
    letters.add(stage="inference", reason=report.reason or "throttled", record=file_level)
    letters.close()
    return replace(report, dead_lettered=report.dead_lettered + valid, unaccounted=report.unaccounted - valid)


def _unaccounted(state: JobState, tally: ChunkTally) -> int:
    prepared = state.prepared
    if prepared is None:
        return 0
    return prepared.records_in - tally.counts.indexed - prepared.dead_lettered - tally.counts.dead_lettered


def _shortfalls(missing: list[int], planned: int, unaccounted: int, plan: IngestPlan | None) -> list[str]:
    """Why a finished job's counts do not add up, in words a person can act on."""
    reasons = []
    if missing:
        shown = ", ".join(str(chunk) for chunk in missing[:MISSING_CHUNKS_SHOWN])
        hidden = len(missing) - MISSING_CHUNKS_SHOWN
        more = f" and {hidden} more" if hidden > 0 else ""
        # A chunk that failed (tolerated by the Map) is replayable: the plan holds its byte range.
        plans = f"s3://{plan.bucket}/{posixpath.dirname(plan.key)}/" if plan else ""
        where = f"; their byte ranges are in the plans at {plans}" if plan else ""
        reasons.append(
            f"{len(missing)} of {planned} ingest chunks never reported (chunk {shown}{more}{where})"
        )
    if unaccounted > 0:
        where = "in chunks that never reported or " if missing else ""
        reasons.append(f"{unaccounted} records are unaccounted for ({where}missing from the model output)")
    elif unaccounted < 0:
        reasons.append(f"the model output has {-unaccounted} more records than were sent to the model")
    return reasons


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
    tally: ChunkTally,
    unaccounted: int,
    dead_letter_bucket: str,
) -> JobReport:
    prepared = state.prepared
    return JobReport(
        job_id=state.job_id,
        pipeline=state.pipeline,
        state=final.value,
        source=state.source.uri,
        records_in=prepared.records_in if prepared else 0,
        indexed=tally.counts.indexed,
        dead_lettered=(prepared.dead_lettered if prepared else 0) + tally.counts.dead_lettered,
        unaccounted=unaccounted,
        duplicate_ids=prepared.duplicate_ids if prepared else 0,
        chunks_planned=state.plan.chunks if state.plan else 0,
        chunks_reported=len(tally.reported),
        reason=reason,
        remote_jobs=[remote.arn or remote.id for remote in state.remotes],
        dead_letter_uri=f"s3://{dead_letter_bucket}/{dead_letter_prefix(state.job_id)}",
        finished_at=utc_now(),
    )


def _store(report: JobReport, jobs: JobTable, s3: S3Client, output_bucket: str, publish: Publish) -> None:
    body = asdict(report)
    key = report_key(report.job_id)
    s3.put_object(Bucket=output_bucket, Key=key, Body=json.dumps(body, indent=2).encode())
    jobs.update(
        report.job_id,
        JobStateName(report.state),
        records_in=report.records_in,
        indexed=report.indexed,
        dead_lettered=report.dead_lettered,
        unaccounted=report.unaccounted,
        duplicate_ids=report.duplicate_ids,
        reason=report.reason,
        finished_at=report.finished_at,
        report=f"s3://{output_bucket}/{key}",
    )
    publish(body)
