"""StartJob and PollJob: submit the inference jobs, then follow each to a terminal state.

An upload is as many remote jobs as Prepare grouped its parts into (steps/parts.py); StartJob creates them
all under names derived from the job id and their index, and PollJob polls those still running and says
how many finished with output not yet ingested (`status.ready`), so the workflow ingests each as it ends.

Polling follows ML Commons' rules where they fit (a task whose status calls fail 10 times in a row is
UNREACHABLE) and adds what it lacks: backoff between polls and an overall deadline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from osbatch.backends.base import BackendThrottled, BackendUnavailable, BatchBackend
from osbatch.config import PipelineConfig, PollingConfig
from osbatch.contracts import job_group, job_output_prefix, remote_job_name
from osbatch.jobs import JobTable, utc_now
from osbatch.models import JobState, JobStateName, JobStatus, PollState, PreparedJob, RemoteJob
from osbatch.s3uri import s3_uri
from osbatch.steps.remote_jobs import overall_status

Clock = Callable[[], float]


class JobSlotsFull(BackendThrottled):
    """max_jobs_in_flight reached; retried like throttling."""


class ThrottledPastWindow(Exception):
    """Throttled (or without a free slot) for longer than the pipeline's retry_time_window. Not retried:
    the state machine's Retry covers the longest window of all its pipelines, so each pipeline's own
    window is enforced here; FailJob then fails the job and dead-letters its file."""


# StartJob's Retry rule (infra/workflow.py). Lambda reports an exception's own class name as the error,
# so every subclass that is retried must be named, not only the base class.
THROTTLED_ERRORS = (BackendThrottled.__name__, JobSlotsFull.__name__)


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


def start_job(
    state: JobState,
    *,
    config: PipelineConfig,
    backend: BatchBackend,
    jobs: JobTable,
    output_bucket: str,
    now: Clock,
) -> JobState:
    assert state.prepared is not None, "StartJob runs after Prepare"
    prepared = state.prepared
    # A job Prepare grouped before remote jobs existed (an execution that spans a deploy) is one remote
    # job over its whole input.
    groups = prepared.jobs or [
        PreparedJob(
            index=0, input_uri=prepared.input_uri, parts=prepared.parts, records=prepared.valid, bytes=0
        )
    ]
    limit = config.inference.max_jobs_in_flight
    remotes = []
    with _within_retry_window(config, jobs, state.job_id, now):
        # A DynamoDB semaphore with a queue (JobTable.acquire_slot): waiting jobs start in the order they
        # first asked. Finalize and FailJob release the slot.
        if not jobs.acquire_slot(config.name, state.job_id, limit, now()):
            raise JobSlotsFull(
                f"pipeline '{config.name}' already has {limit} jobs in flight (max_jobs_in_flight)"
            )
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


def next_wait_seconds(wait_seconds: int, polling: PollingConfig) -> int:
    """The wait before the next poll: grown by backoff_rate (rounded up) to max_interval_seconds. The
    synth-time history check (infra/history.py) replays this to count a job's polls."""
    return min(polling.max_interval_seconds, math.ceil(wait_seconds * polling.backoff_rate))


def timeout_used_percent(poll: PollState, polling: PollingConfig, now: float) -> float:
    """How much of timeout_hours a job has used: StartJob set the deadline that far ahead. The job-age
    alarm watches it (infra/monitoring.py), so a slow job is noticed before PollJob expires it at 100."""
    timeout = polling.timeout_hours * 3600
    return round(max(0.0, 100 * (1 - (poll.deadline - now) / timeout)), 1)


def poll_job(
    state: JobState,
    *,
    config: PipelineConfig,
    backend: BatchBackend,
    jobs: JobTable,
    now: Clock,
) -> JobState:
    assert state.remotes and state.poll is not None, "PollJob runs after StartJob"
    polling = config.inference.polling
    poll = state.poll.model_copy(update={"attempt": state.poll.attempt + 1})
    remotes = list(state.remotes)
    progress = dict((state.status.progress if state.status else {}).get("remote_jobs") or {})
    try:
        # Each remote job is polled until it ends; one that ended keeps its state.
        for position, remote in enumerate(remotes):
            if not remote.state.terminal:
                answer = backend.status(remote)
                remotes[position] = remote.model_copy(update={"state": answer.state, "reason": answer.reason})
                progress[remote.id] = answer.progress
        poll = poll.model_copy(update={"failures": 0})
        status = overall_status(remotes, progress)
    except BackendUnavailable as error:
        failures = poll.failures + 1
        poll = poll.model_copy(update={"failures": failures})
        if failures >= polling.max_failed_polls:
            status = JobStatus(
                state=JobStateName.UNREACHABLE,
                reason=f"{failures} status calls failed in a row; last: {error}",
            )
        else:
            status = overall_status(remotes, progress)

    if not status.state.terminal and now() >= poll.deadline:
        for remote in remotes:
            if not remote.state.terminal:
                backend.cancel(remote)  # stop paying for jobs nobody will wait for
        status = JobStatus(
            state=JobStateName.EXPIRED,
            reason=f"not finished after {polling.timeout_hours:g} h "
            "(inference.polling.timeout_hours); stopped",
        )

    poll = poll.model_copy(update={"wait_seconds": next_wait_seconds(poll.wait_seconds, polling)})
    jobs.update(
        state.job_id,
        None if status.state.terminal else status.state,
        remote_status=status.progress.get("remote_status"),
        remote_jobs_done=sum(remote.state.terminal for remote in remotes),
        polls=poll.attempt,
    )
    return state.model_copy(update={"status": status, "poll": poll, "remotes": remotes})
