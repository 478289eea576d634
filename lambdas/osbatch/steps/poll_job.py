"""PollJob: follow each remote job to a terminal state.

PollJob polls the remote jobs still running and says how many finished with output not yet ingested
(`status.ready`), so the workflow ingests each as it ends. Polling follows ML Commons' rules where they fit
(a task whose status calls fail 10 times in a row is UNREACHABLE) and adds what it lacks: backoff between
polls and an overall deadline.
"""

from __future__ import annotations

from collections.abc import Callable

from osbatch.backends.base import BackendUnavailable, BatchBackend
from osbatch.config import PipelineConfig, PollingConfig, next_wait_seconds
from osbatch.dal import JobTable
from osbatch.models import JobState, JobStateName, JobStatus, PollState
from osbatch.steps.support.remote_jobs import overall_status
from osbatch.steps.support.slot_wake import ReleaseSlot, release_only

Clock = Callable[[], float]


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
    release_slot: ReleaseSlot | None = None,
) -> JobState:
    """release_slot gives the slot back and wakes the oldest waiting job (steps/support/slot_wake.py);
    None gives it back only, and the waiting jobs start at their fallback retry."""
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

    if all(remote.state.terminal for remote in remotes):
        # The slot bounds remote jobs, not ingest (the domain's writer limit bounds that): once this job's
        # have all ended, the next upload's may start while this one ingests. Finalize and FailJob release
        # it again, a no-op, so every path out of the workflow still frees it.
        (release_slot or release_only(jobs))(state.pipeline, state.job_id)
    poll = poll.model_copy(update={"wait_seconds": next_wait_seconds(poll.wait_seconds, polling)})
    jobs.update(
        state.job_id,
        None if status.state.terminal else status.state,
        remote_status=status.progress.get("remote_status"),
        remote_jobs_done=sum(remote.state.terminal for remote in remotes),
        polls=poll.attempt,
    )
    return state.model_copy(update={"status": status, "poll": poll, "remotes": remotes})
