"""Park and wake: WaitForJob ends when the remote job's completion event arrives, not only at its timeout.

WaitForJob is a `lambda:invoke.waitForTaskToken` task: `park` stores its token and returns, and the task
waits until someone calls SendTaskSuccess with that token or its TimeoutSecondsPath ($.poll.wait_seconds)
passes, which is the polling fallback. `wake` runs for each terminal state-change event of one of
osbatch's remote jobs (remote_events.py) and sends the token, so PollJob runs at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from osbatch.remote_events import STATE_CHANGE_EVENTS, job_id_candidates
from osbatch.wakeups import Wakeups

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

LOG = logging.getLogger(__name__)
# What SendTaskSuccess answers for a token whose task is no longer waiting: it timed out (the poll ran
# anyway), or the execution ended. Both are normal outcomes of the race between an event and the timeout.
STALE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# The parked task's output is discarded (ResultPath null), so the JobState passes through unchanged.
TASK_OUTPUT = "{}"
# A stale claim is put back and tried once more: a newer park may have stored its token meanwhile.
CLAIM_ATTEMPTS = 2


class Outcome(StrEnum):
    WOKEN = "woken"  # SendTaskSuccess reached a parked task
    RECORDED = "recorded"  # no task is parked; the next park resumes at once
    IGNORED = "ignored"  # not a terminal event, or not an osbatch job of this stack


class RemoteJobEvent(EventBridgeModel):
    """A state-change event as EventBridge delivers it; `detail` is the service's own (remote_events.py)."""

    detail: dict[str, Any]


class ParkRequest(BaseModel):
    """WaitForJob's payload: the job and `$$.Task.Token`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    token: str


def park(request: ParkRequest, *, wakeups: Wakeups, sfn: SFNClient) -> Outcome:
    wakeups.store_token(request.job_id, request.token)
    return _resume(request.job_id, wakeups, sfn)


def wake(
    source: str, detail_type: str, detail: Mapping[str, Any], *, wakeups: Wakeups, sfn: SFNClient
) -> tuple[Outcome, str | None]:
    """The outcome and the job id the event belongs to (None when it belongs to none)."""
    spec = next((s for s in STATE_CHANGE_EVENTS if s.matches(source, detail_type)), None)
    if spec is None or detail.get(spec.status_field) not in spec.terminal_statuses:
        return Outcome.IGNORED, None  # the rules pass only terminal events; SageMaker may repeat others
    name = str(detail.get(spec.name_field, ""))
    # Another stack in the account names its jobs with the same prefix: its events are not ours.
    job_id = next((c for c in job_id_candidates(name) if wakeups.job_exists(c)), None)
    if job_id is None or not wakeups.note_finished(job_id, [name]):
        return Outcome.IGNORED, None
    return _resume(job_id, wakeups, sfn), job_id


def _resume(job_id: str, wakeups: Wakeups, sfn: SFNClient) -> Outcome:
    for _ in range(CLAIM_ATTEMPTS):
        claim = wakeups.claim(job_id)
        if claim is None:
            return Outcome.RECORDED
        try:
            sfn.send_task_success(taskToken=claim.token, output=TASK_OUTPUT)
            return Outcome.WOKEN
        except ClientError as error:
            if error.response["Error"]["Code"] not in STALE_TOKEN_ERRORS:
                raise
            LOG.info("token of job %s is stale (%s)", job_id, error.response["Error"]["Code"])
            # Put the finishes back: the next park (if the workflow waits again) resumes at once.
            wakeups.note_finished(job_id, claim.finished)
    return Outcome.RECORDED
