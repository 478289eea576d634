"""ParkJob (WaitForJob's task): WaitForJob ends when the remote job's completion event arrives, not only at
its timeout.

WaitForJob is a `lambda:invoke.waitForTaskToken` task: `park` stores its token and returns, and the task
waits until someone calls SendTaskSuccess with that token or its TimeoutSecondsPath ($.poll.wait_seconds)
passes, which is the polling fallback. `wake` (steps/wake_job.py) runs for each terminal state-change event
of one of osbatch's remote jobs (backends/remote_events.py) and sends the token, so PollJob runs at once.

Park and wake each first write their half (dal/wakeups.py) and then try to claim both at once, so the task
is resumed exactly once whichever came first (steps/support/resume.py).

WaitForSlot parks with the same function (`wait: "slot"`): its token and the releases that wake it are a
pair of their own on the job item (dal/wakeups.py SlotWakeups; steps/support/slot_wake.py sends it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from osbatch.dal import Wakeups
from osbatch.steps.support.resume import Outcome, resume

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


# What a parked task waits for: its remote jobs' end (WaitForJob) or a job slot (WaitForSlot).
ParkFor = Literal["job", "slot"]
PARK_FOR_JOB: ParkFor = "job"
PARK_FOR_SLOT: ParkFor = "slot"


class ParkRequest(BaseModel):
    """WaitForJob's and WaitForSlot's payload: the job, `$$.Task.Token`, and what it waits for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    token: str
    wait: ParkFor = PARK_FOR_JOB


def park(request: ParkRequest, *, wakeups: Wakeups, sfn: SFNClient) -> Outcome:
    wakeups.store_token(request.job_id, request.token)
    return resume(request.job_id, wakeups, sfn)
