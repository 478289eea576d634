"""The job report Finalize and FailJob write, and the conservation sums both settle a job with.

Conservation: records_in = indexed + unchanged + dead_lettered (unchanged: records whose vectors were kept,
osbatch.incremental). Whatever breaks it is reported as `unaccounted`,
never hidden (steps/finalize.py and steps/fail_job.py say how each shortfall becomes dead letters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from osbatch.contracts import dead_letter_prefix, report_key
from osbatch.dal import ChunkTally, JobStore, utc_now
from osbatch.models import JobState, JobStateName, JobStatus

Publish = Callable[[dict[str, Any]], None]


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
    # A chunking pipeline's passages: {sent, embedded, dead_lettered} (None when it does not chunk).
    passages: dict[str, int] | None = field(default=None)
    # Incremental re-embedding (osbatch.incremental): records whose vectors were kept, what that saved, and
    # the documents of an earlier version of the source object (stale: kept; deleted: source.sync mirror).
    unchanged: int = 0
    incremental: dict[str, Any] = field(default_factory=dict)
    stale: int = 0
    deleted: int = 0
    # The plan's estimate as Prepare recorded it, and what the job came to (steps/support/actuals.py).
    estimate: dict[str, Any] = field(default_factory=dict)
    actual: dict[str, Any] = field(default_factory=dict)
    # Bulk attempts the domain answered 429 (es_rejected_execution_exception) that ingest backed off from and
    # retried: how hard the job pressed the cluster. Retries that still failed are in dead_lettered.
    throttled_requests: int = 0


def build_report(
    state: JobState, ending: JobStatus, tally: ChunkTally, unaccounted: int, dead_letter_bucket: str
) -> JobReport:
    """ending: the job's terminal state and its reason."""
    prepared = state.prepared
    return JobReport(
        job_id=state.job_id,
        pipeline=state.pipeline,
        state=ending.state.value,
        source=state.source.uri,
        # A batch request has no Prepare: its records are the lines its chunks read.
        records_in=prepared.records_in if prepared else tally.counts.lines,
        indexed=tally.counts.indexed,
        dead_lettered=dead_lettered_records(state, tally),
        unaccounted=unaccounted,
        duplicate_ids=prepared.duplicate_ids if prepared else 0,
        unchanged=prepared.unchanged if prepared else 0,
        incremental=prepared.incremental if prepared else {},
        # Prepare's count; Finalize's source sync replaces it (deleted with mirror), FailJob keeps it.
        stale=int(prepared.incremental.get("stale", 0)) if prepared else 0,
        estimate=prepared.estimate if prepared else {},
        chunks_planned=state.plan.chunks if state.plan else 0,
        chunks_reported=len(tally.reported),
        reason=ending.reason,
        remote_jobs=[remote.arn or remote.id for remote in state.remotes],
        dead_letter_uri=f"s3://{dead_letter_bucket}/{dead_letter_prefix(state.job_id)}",
        finished_at=utc_now(),
        passages=passage_counts(state),
        throttled_requests=tally.counts.throttled,
    )


def passage_counts(state: JobState) -> dict[str, int] | None:
    """Passages sent, embedded (of the records joined with every vector) and dead-lettered (the rest: their
    records were refused, dropped, or never came back), so sent = embedded + dead_lettered for every job."""
    sent = state.prepared.passages if state.prepared else None
    if sent is None:
        return None
    embedded = state.plan.passages_embedded if state.plan else 0
    return {"sent": sent, "embedded": embedded, "dead_lettered": sent - embedded}


def store_report(report: JobReport, store: JobStore, publish: Publish) -> None:
    """The report in the output bucket, its figures on the job item, and the event."""
    jobs, s3, output_bucket = store.table, store.s3, store.output_bucket
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
        unchanged=report.unchanged,
        stale=report.stale,
        deleted=report.deleted,
        # JSON text: the job item holds numbers as Decimal, and these are read whole (osbatch status).
        estimate=json.dumps(report.estimate) if report.estimate else None,
        actual=json.dumps(report.actual) if report.actual else None,
        reason=report.reason,
        finished_at=report.finished_at,
        report=f"s3://{output_bucket}/{key}",
        **_passage_fields(report.passages),
    )
    publish(body)


def _passage_fields(passages: dict[str, int] | None) -> dict[str, int]:
    """The job item's flat passage counts (`osbatch status`, the job table); none for an unchunked job."""
    return {f"passages_{name}": value for name, value in (passages or {}).items()}


def unaccounted_records(state: JobState, tally: ChunkTally) -> int:
    prepared = state.prepared
    if prepared is None:
        return 0
    return (
        prepared.records_in - prepared.unchanged - tally.counts.indexed - dead_lettered_records(state, tally)
    )


def dead_lettered_records(state: JobState, tally: ChunkTally) -> int:
    """Prepare's bad lines, PlanIngest's records missing from the output, and the chunks' dead letters."""
    prepared = state.prepared.dead_lettered if state.prepared else 0
    planned = state.plan.dead_lettered if state.plan else 0
    return prepared + planned + tally.counts.dead_lettered
