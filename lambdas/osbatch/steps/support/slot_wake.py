"""A released job slot starts the oldest waiting upload at once, instead of at its next StartJob retry.

A StartJob refused a slot (JobSlotsFull) parks in WaitForSlot, a `waitForTaskToken` task whose fixed
timeout (infra/workflow.py `SLOT_WAIT_FALLBACK_SECONDS`) is the fallback retry. Whoever gives a slot back
(PollJob once every remote job has ended, Finalize, FailJob) then wakes the jobs whose turn it is: the oldest
live tickets, no more than the free slots (JobSlots.next_waiters), so a release wakes at most as many jobs
as may start. Each wake uses the park/wake protocol of WaitForJob (steps/park_job.py) on the job item's own
pair of attributes (dal/wakeups.py SlotWakeups): the releaser notes the release on the waiter's item, then
claims token and note together with one conditional update, so a parked task is sent its token exactly
once, and a release that comes before the waiter has parked is found by the park itself. Re-running a
release (a retried Finalize) releases nothing more and wakes only a waiter that is still parked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from osbatch.dal import JobTable, SlotWakeups
from osbatch.steps.support.resume import Outcome, resume

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

Clock = Callable[[], float]
# What PollJob, Finalize and FailJob call to give a job's slot back: (pipeline, job id).
ReleaseSlot = Callable[[str, str], object]


class SlotRelease:
    """Gives a job's slot back and wakes the waiting jobs whose turn it now is."""

    def __init__(
        self, jobs: JobTable, wakeups: SlotWakeups, sfn: SFNClient, *, limit: int, now: Clock
    ) -> None:
        """limit: the pipeline's max_jobs_in_flight."""
        self._jobs = jobs
        self._limit = limit
        self._wakeups = wakeups
        self._sfn = sfn
        self._now = now

    def __call__(self, pipeline: str, job_id: str) -> dict[str, Outcome]:
        """Release job_id's slot (a no-op if it has none); each woken candidate and how it went."""
        self._jobs.release_slot(pipeline, job_id)
        outcomes = {}
        for waiter in self._jobs.next_waiters(pipeline, self._limit, self._now()):
            if waiter == job_id or not self._wakeups.note_finished(waiter, [job_id]):
                continue  # the releaser itself, or a ticket whose job item is gone
            outcomes[waiter] = resume(waiter, self._wakeups, self._sfn)
        return outcomes


def release_only(jobs: JobTable) -> ReleaseSlot:
    """A release that wakes no one: for callers with no Step Functions (the CLI's local steps, tests of
    other behaviour); the waiting jobs then start at WaitForSlot's fallback timeout."""
    return jobs.release_slot
