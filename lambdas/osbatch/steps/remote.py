"""StartJob and PollJob: submit the inference job, then follow it to a terminal state.

Polling follows ML Commons' rules where they fit (a task whose status calls fail 10 times in a row is
UNREACHABLE) and adds what it lacks: backoff between polls and an overall deadline.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from osbatch.backends.base import BackendThrottled, BackendUnavailable, BatchBackend
from osbatch.config import PipelineConfig, PollingConfig
from osbatch.contracts import job_output_prefix
from osbatch.jobs import JobTable, utc_now
from osbatch.models import JobState, JobStateName, JobStatus, PollState
from osbatch.s3uri import s3_uri

Clock = Callable[[], float]


class JobSlotsFull(BackendThrottled):
    """max_jobs_in_flight reached; retried like throttling."""


# StartJob's Retry rule (infra/workflow.py). Lambda reports an exception's own class name as the error,
# so every subclass that is retried must be named, not only the base class.
THROTTLED_ERRORS = (BackendThrottled.__name__, JobSlotsFull.__name__)


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
    limit = config.inference.max_jobs_in_flight
    # A DynamoDB semaphore (JobTable.acquire_slot); Finalize and FailJob release the slot.
    if not jobs.acquire_slot(config.name, state.job_id, limit):
        raise JobSlotsFull(
            f"pipeline '{config.name}' already has {limit} jobs in flight (max_jobs_in_flight)"
        )

    output_uri = s3_uri(output_bucket, job_output_prefix(state.job_id))
    remote = backend.submit(state.job_id, state.prepared.input_uri, output_uri)
    jobs.update(
        state.job_id, JobStateName.RUNNING, remote_id=remote.id, remote_arn=remote.arn, submitted_at=utc_now()
    )
    polling = config.inference.polling
    poll = PollState(
        wait_seconds=polling.interval_seconds,
        deadline=int(now() + polling.timeout_hours * 3600),
    )
    status = JobStatus(state=JobStateName.RUNNING)
    return state.model_copy(update={"remote": remote, "poll": poll, "status": status})


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
    assert state.remote is not None and state.poll is not None, "PollJob runs after StartJob"
    polling = config.inference.polling
    poll = state.poll.model_copy(update={"attempt": state.poll.attempt + 1})
    try:
        remote_status = backend.status(state.remote)
        status = JobStatus(
            state=remote_status.state, reason=remote_status.reason, progress=remote_status.progress
        )
        poll = poll.model_copy(update={"failures": 0})
    except BackendUnavailable as error:
        failures = poll.failures + 1
        poll = poll.model_copy(update={"failures": failures})
        if failures >= polling.max_failed_polls:
            status = JobStatus(
                state=JobStateName.UNREACHABLE,
                reason=f"{failures} status calls failed in a row; last: {error}",
            )
        else:
            status = state.status or JobStatus(state=JobStateName.RUNNING)

    if not status.state.terminal and now() >= poll.deadline:
        backend.cancel(state.remote)  # stop paying for a job nobody will wait for
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
        polls=poll.attempt,
    )
    return state.model_copy(update={"status": status, "poll": poll})
