"""Resuming a parked WaitForJob: shared by park-job (the job finished before the token was stored) and
wake-job (the completion event arrived). See steps/park_job.py for the protocol.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from osbatch.dal import Wakeups

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


def resume(job_id: str, wakeups: Wakeups, sfn: SFNClient) -> Outcome:
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
