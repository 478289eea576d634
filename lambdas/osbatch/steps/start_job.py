"""StartJob: take one of the pipeline's job slots and submit the inference jobs.

An upload is as many remote jobs as Prepare grouped its parts into (steps/support/parts.py); StartJob
creates them all under names derived from the job id and their index, so a re-run finds the ones it made.
Throttling is retried by the workflow within the pipeline's retry_time_window; a pipeline with no free slot
within its slot_wait_window, a separate clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from osbatch.backends.base import BackendThrottled, BatchBackend, JobSlotsFull
from osbatch.config import PipelineConfig
from osbatch.contracts import job_group, job_output_prefix, remote_job_name
from osbatch.dal import JobStore, JobTable, utc_now
from osbatch.models import JobState, JobStateName, JobStatus, PollState, PreparedJob, RemoteJob
from osbatch.s3uri import s3_uri

Clock = Callable[[], float]


class ThrottledPastWindow(Exception):
    """Throttled for longer than the pipeline's retry_time_window. Not retried: the state machine's Retry
    covers the longest window of all its pipelines, so each pipeline's own window is enforced here;
    FailJob then fails the job and dead-letters its file."""


class SlotWaitPastWindow(ThrottledPastWindow):
    """Queued for a job slot for longer than the pipeline's slot_wait_window; not retried, as above."""


@contextmanager
def _within_retry_window(config: PipelineConfig, jobs: JobTable, job_id: str, now: Clock) -> Iterator[None]:
    """Throttling is retried by the workflow for the longest window of the stack's pipelines; this holds
    each pipeline to its own, counted from the job's first throttled attempt."""
    try:
        yield
    except BackendThrottled as error:
        waited = now() - jobs.throttled_since(job_id, now())
        if waited >= config.inference.retry_time_window_seconds:
            raise ThrottledPastWindow(
                f"still throttled after {round(waited)} s, past retry_time_window "
                f"{config.inference.retry_time_window}: {error}"
            ) from error
        raise


def _take_slot(config: PipelineConfig, jobs: JobTable, job_id: str, now: Clock) -> None:
    """A DynamoDB semaphore with a queue (JobTable.acquire_slot): waiting jobs start in the order they
    first asked. PollJob releases the slot when the job's remote jobs have ended (Finalize and FailJob
    again, idempotently). The wait is held to slot_wait_window, from the first refusal, on a clock of its
    own: a job that queued for hours still gets its whole retry_time_window for the service's throttling."""
    limit = config.inference.max_jobs_in_flight
    if jobs.acquire_slot(config.name, job_id, limit, now()):
        return
    waited = now() - jobs.slot_wait_since(job_id, now())
    message = f"pipeline '{config.name}' already has {limit} jobs in flight (max_jobs_in_flight)"
    if waited >= config.inference.slot_wait_window_seconds:
        raise SlotWaitPastWindow(
            f"no job slot after {round(waited)} s, past slot_wait_window "
            f"{config.inference.slot_wait_window}: {message}"
        )
    raise JobSlotsFull(message)


def start_job(
    state: JobState, *, config: PipelineConfig, backend: BatchBackend, store: JobStore, now: Clock
) -> JobState:
    assert state.prepared is not None, "StartJob runs after Prepare"
    jobs, output_bucket = store.table, store.output_bucket
    prepared = state.prepared
    # A job Prepare grouped before remote jobs existed (an execution that spans a deploy) is one remote
    # job over its whole input.
    groups = prepared.jobs or [
        PreparedJob(
            index=0, input_uri=prepared.input_uri, parts=prepared.parts, records=prepared.valid, bytes=0
        )
    ]
    remotes = []
    _take_slot(config, jobs, state.job_id, now)
    with _within_retry_window(config, jobs, state.job_id, now):
        for part in groups:
            output_uri = s3_uri(output_bucket, f"{job_output_prefix(state.job_id)}{job_group(part.index)}")
            remote = backend.submit(remote_job_name(state.job_id, part.index), part.input_uri, output_uri)
            remotes.append(remote.model_copy(update={"index": part.index, "records": part.records}))
            # Recorded as each is created, so a cancel, or a FailJob after StartJob's retries ran out, can
            # stop every remote job created so far.
            jobs.update(state.job_id, JobStateName.RUNNING, remote_jobs=[_ref(r) for r in remotes])
    jobs.update(state.job_id, JobStateName.RUNNING, submitted_at=utc_now())
    polling = config.inference.polling
    poll = PollState(
        wait_seconds=polling.interval_seconds,
        deadline=int(now() + polling.timeout_hours * 3600),
    )
    status = JobStatus(state=JobStateName.RUNNING)
    return state.model_copy(update={"remotes": remotes, "poll": poll, "status": status})


def _ref(remote: RemoteJob) -> dict[str, str]:
    """What the job table keeps of a remote job: enough to stop it (osbatch cancel, FailJob)."""
    return {"id": remote.id, "arn": remote.arn, "output_uri": remote.output_uri}
