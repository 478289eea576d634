"""Finalize: the counts of every chunk reconciled, the report written, the event and metrics sent.

Conservation is checked here: records_in = indexed + unchanged + dead_lettered. Whatever breaks it is reported
as `unaccounted`, never hidden: chunks the Map tolerated failing are dead-lettered from their checkpoints
(steps/support/unreported.py), remote jobs that failed while others completed are dead-lettered at file level
(steps/support/failed_parts.py), and records SageMaker's output lacks are found by diffing the short parts
(steps/support/dropped.py); records a joining backend (Bedrock, OpenAI) dropped were already dead-lettered at
PlanIngest (steps/support/join.py). A finished job with any shortfall, or any record missing from the output,
ends PARTIALLY_COMPLETED."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import replace

from osbatch.backends.base import BatchBackend
from osbatch.dal import JobStore
from osbatch.incremental.sync import SyncResult
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus
from osbatch.search.bulk_load import IndexLoad
from osbatch.steps.support.actuals import with_actuals
from osbatch.steps.support.dropped import FINALIZE_DIFF_BYTES, dead_letter_dropped
from osbatch.steps.support.failed_parts import dead_letter_failed_parts
from osbatch.steps.support.report import (
    JobReport,
    Publish,
    build_report,
    store_report,
    unaccounted_records,
)
from osbatch.steps.support.slot_wake import ReleaseSlot, release_only
from osbatch.steps.support.unreported import dead_letter_unreported

MISSING_CHUNKS_SHOWN = 10  # a reason names this many missing chunks, then says how many more
# Why a tolerated chunk's records were not indexed (their dead letters' reason).
TOLERATED_CHUNK = "its chunk failed and the Map tolerated it (sink.tolerated_chunk_failure_percentage)"


def finalize_job(
    state: JobState,
    *,
    store: JobStore,
    publish: Publish,
    index_load: IndexLoad | None = None,
    diff_output: bool = False,
    backend: BatchBackend | None = None,
    sync: Callable[[bool], SyncResult] | None = None,
    release_slot: ReleaseSlot | None = None,
) -> tuple[JobState, JobReport]:
    """diff_output: the backend's output carries its records (no join at PlanIngest), so records it lacks
    are found here, when the counts come up short (steps/support/dropped.py). backend: for the token counts
    it reports (steps/support/actuals.py). sync: completed -> the documents of the source's earlier version
    (osbatch.incremental.sync), for pipelines with incremental re-embedding."""
    jobs, s3 = store.table, store.s3
    assert state.prepared is not None or state.batch is not None, "Finalize runs after Prepare"
    if index_load is not None:
        index_load.end(jobs, state.job_id)  # before the report: a job is done once its index is searchable
    planned = state.plan.chunks if state.plan else 0
    tally = jobs.chunk_totals(state.job_id, planned)
    # Chunks the Map tolerated failing (sink.tolerated_chunk_failure_percentage) never reported: their
    # records become dead letters from the chunks' checkpoints, replayable, rather than unaccounted.
    missing, reported = tally.missing(planned), len(tally.reported)
    if missing and dead_letter_unreported(state, tally, why=TOLERATED_CHUNK, store=store):
        tally = jobs.chunk_totals(state.job_id, planned)
    # Remote jobs that failed while others completed: their records never reached a model's output.
    failed_parts = dead_letter_failed_parts(state, s3, store.dead_letter_bucket)
    unaccounted = unaccounted_records(state, tally) - failed_parts
    dropped = 0
    if diff_output and unaccounted > 0:
        dropped = dead_letter_dropped(state, tally, store=store, budget_bytes=FINALIZE_DIFF_BYTES)
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
    ending = JobStatus(state=final, reason=reason)
    report = build_report(state, ending, tally, unaccounted, store.dead_letter_bucket)
    # chunks_reported: the chunks that reported themselves, not those settled above
    report = replace(
        report, dead_lettered=report.dead_lettered + failed_parts + dropped, chunks_reported=reported
    )
    if sync is not None:
        synced = sync(final is JobStateName.COMPLETED)
        report = replace(report, stale=synced.stale, deleted=synced.deleted)
        if synced.note:
            report = replace(report, incremental={**report.incremental, "sync": synced.note})
    report = with_actuals(report, state, jobs=jobs, backend=backend)
    store_report(report, store, publish)
    (release_slot or release_only(jobs))(state.pipeline, state.job_id)  # and wakes the next waiting job
    return state.model_copy(update={"status": ending}), report


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
