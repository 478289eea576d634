"""PlanIngest, Finalize and FailJob: from finished inference to an accounted-for index.

Conservation is checked here: records_in = indexed + dead_lettered. Whatever breaks it is reported as
`unaccounted`, never hidden: records the backend silently dropped (sent to the model, absent from its
output), chunks of the ingest plan that never reported, and the valid records of a job that failed
before they were indexed. All of these become dead letters, so `unaccounted` stays 0: records a joining
backend (Bedrock, OpenAI) dropped are found by diffing line numbers at PlanIngest (steps/join.py), records
SageMaker's output lacks by diffing the short parts at Finalize (steps/dropped.py), the unreported chunks
of a failed or tolerated Map are dead-lettered from their checkpoints (steps/unreported.py), and a job
that failed before ingest has its file dead-lettered whole. A finished job with any shortfall, or any
record missing from the output, ends PARTIALLY_COMPLETED.
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
    INDEX_DEAD_LETTERS,
    INFERENCE_DEAD_LETTERS,
    dead_letter_key,
    dead_letter_prefix,
    job_joined_prefix,
    job_source_prefix,
    plan_key,
    plan_name,
    report_key,
)
from osbatch.ingest.dead_letter import DeadLetterWriter, Stage
from osbatch.ingest.readers import plan_chunks
from osbatch.jobs import ChunkTally, JobTable, utc_now
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus, RemoteJob
from osbatch.search.bulk_load import IndexLoad, begin_bulk_load
from osbatch.search.index import ensure_compatible_index
from osbatch.steps.dropped import FAIL_JOB_DIFF_BYTES, FINALIZE_DIFF_BYTES, dead_letter_dropped
from osbatch.steps.failed_parts import dead_letter_failed_parts, dead_letter_remote_jobs
from osbatch.steps.join import join_outputs
from osbatch.steps.unreported import dead_letter_unreported

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024  # one ingest Lambda streams and bulks this in well under a minute
MISSING_CHUNKS_SHOWN = 10
# A plan's document versions are its time in seconds above 32 bits of input line: a later plan (a re-upload,
# a re-run) outranks every line of an earlier one, and 2^31 seconds of plans fit a signed 64-bit version.
LINE_BITS = 32  # a reason names this many missing chunks, then says how many more
# Remote states after which the model output exists: a failure then happened on the way to the index.
INFERRED = frozenset({JobStateName.COMPLETED, JobStateName.PARTIALLY_COMPLETED})


# Why a tolerated chunk's records were not indexed (their dead letters' reason).
TOLERATED_CHUNK = "its chunk failed and the Map tolerated it (sink.tolerated_chunk_failure_percentage)"


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
    dead_letter_bucket: str,
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
    previous = state.plan
    objects_before = previous.objects if previous else 0
    missing = 0
    if backend.joins_source:

        def dead_letters(number: int) -> DeadLetterWriter:
            # Numbered across plans, so a later plan's letters never overwrite an earlier one's.
            key = dead_letter_key(state.job_id, INFERENCE_DEAD_LETTERS, objects_before + number)
            return DeadLetterWriter(s3, dead_letter_bucket, key, job_id=state.job_id, source=state.source.uri)

        joined = join_outputs(
            backend,
            s3,
            outputs,
            source_bucket=output_bucket,
            source_prefix=job_source_prefix(state.job_id),
            joined_prefix=job_joined_prefix(state.job_id),
            dead_letters=dead_letters,
        )
        outputs, missing = joined.outputs, joined.missing
    # Chunk numbers continue after the earlier plans', so the chunk items 0 .. chunks - 1 are every plan's.
    first = previous.chunks if previous else 0
    number = previous.number + 1 if previous else 0
    chunks = plan_chunks([(output.key, output.size) for output in outputs], chunk_bytes)
    version_base = int(clock()) << LINE_BITS
    items = [
        {"chunk": first + offset, "bucket": output_bucket, "file": 0, "version_base": version_base, **chunk}
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
        dead_lettered=(previous.dead_lettered if previous else 0) + missing,  # every plan's
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
    diff_output: bool = False,
) -> tuple[JobState, JobReport]:
    """diff_output: the backend's output carries its records (no join at PlanIngest), so records it lacks
    are found here, when the counts come up short (steps/dropped.py)."""
    assert state.prepared is not None or state.batch is not None, "Finalize runs after Prepare"
    if index_load is not None:
        index_load.end(jobs, state.job_id)  # before the report: a job is done once its index is searchable
    planned = state.plan.chunks if state.plan else 0
    tally = jobs.chunk_totals(state.job_id, planned)
    # Chunks the Map tolerated failing (sink.tolerated_chunk_failure_percentage) never reported: their
    # records become dead letters from the chunks' checkpoints, replayable, rather than unaccounted.
    missing, reported = tally.missing(planned), len(tally.reported)
    if missing and dead_letter_unreported(
        state, tally, why=TOLERATED_CHUNK, jobs=jobs, s3=s3, dead_letter_bucket=dead_letter_bucket
    ):
        tally = jobs.chunk_totals(state.job_id, planned)
    # Remote jobs that failed while others completed: their records never reached a model's output.
    failed_parts = dead_letter_failed_parts(state, s3, dead_letter_bucket)
    unaccounted = _unaccounted(state, tally) - failed_parts
    dropped = 0
    if diff_output and unaccounted > 0:
        dropped = dead_letter_dropped(
            state,
            tally,
            s3=s3,
            output_bucket=output_bucket,
            dead_letter_bucket=dead_letter_bucket,
            budget_bytes=FINALIZE_DIFF_BYTES,
        )
        unaccounted -= dropped
    reasons = _shortfalls(missing, planned, unaccounted, state.plan)
    lacking = (state.plan.dead_lettered if state.plan else 0) + dropped
    if lacking:
        reasons.insert(
            0, f"{lacking} records are missing from the model output (dead-lettered at stage inference)"
        )
    if state.status is not None and state.status.state is JobStateName.PARTIALLY_COMPLETED:
        reasons.insert(0, state.status.reason or "the inference job completed partially")
    final = JobStateName.PARTIALLY_COMPLETED if reasons else JobStateName.COMPLETED
    reason = "; ".join(reasons) or None
    report = _report(state, final, reason, tally, unaccounted, dead_letter_bucket)
    # chunks_reported: the chunks that reported themselves, not those settled above
    report = replace(
        report, dead_lettered=report.dead_lettered + failed_parts + dropped, chunks_reported=reported
    )
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
        state,
        tally,
        why=f"the job failed ({reason or final.value})",
        jobs=jobs,
        s3=s3,
        dead_letter_bucket=dead_letter_bucket,
    ):
        tally = jobs.chunk_totals(state.job_id, state.plan.chunks if state.plan else 0)
    report = _report(state, final, reason, tally, _unaccounted(state, tally), dead_letter_bucket)
    if state.plan is None and state.prepared is not None and state.prepared.valid > 0:
        report = _dead_letter_file(state, report, s3, dead_letter_bucket)
    elif state.plan is not None:
        # Some remote jobs' output was ingested; the others' records (still running and now stopped,
        # failed, or finished after the failure) will never be: one file-level letter each.
        left = [remote for remote in state.remotes if not remote.ingested]
        letters = dead_letter_remote_jobs(
            state, left, s3, dead_letter_bucket, job_reason=reason or final.value
        )
        report = replace(
            report, dead_lettered=report.dead_lettered + letters, unaccounted=report.unaccounted - letters
        )
        # The remote jobs ingested before the failure may lack records, as in Finalize.
        if backend is not None and not backend.joins_source and report.unaccounted > 0:
            dropped = dead_letter_dropped(
                state,
                tally,
                s3=s3,
                output_bucket=output_bucket,
                dead_letter_bucket=dead_letter_bucket,
                budget_bytes=FAIL_JOB_DIFF_BYTES,
            )
            report = replace(
                report, dead_lettered=report.dead_lettered + dropped, unaccounted=report.unaccounted - dropped
            )
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


def _unaccounted(state: JobState, tally: ChunkTally) -> int:
    prepared = state.prepared
    if prepared is None:
        return 0
    return prepared.records_in - tally.counts.indexed - _dead_lettered(state, tally)


def _dead_lettered(state: JobState, tally: ChunkTally) -> int:
    """Prepare's bad lines, PlanIngest's records missing from the output, and the chunks' dead letters."""
    prepared = state.prepared.dead_lettered if state.prepared else 0
    planned = state.plan.dead_lettered if state.plan else 0
    return prepared + planned + tally.counts.dead_lettered


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
            f"{len(missing)} of {planned} ingest chunks failed (chunk {shown}{more}{where}); their records "
            "are dead-lettered from the chunks' checkpoints"
        )
    if unaccounted > 0:
        where = "in chunks that failed or " if missing else ""
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
        # A batch request has no Prepare: its records are the lines its chunks read.
        records_in=prepared.records_in if prepared else tally.counts.lines,
        indexed=tally.counts.indexed,
        dead_lettered=_dead_lettered(state, tally),
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
