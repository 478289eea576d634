"""Wake-ups on the job item: the token of the parked WaitForJob task, and the finished remote jobs no
parked task has been told about yet; and the same pair for a job parked in WaitForSlot (SlotWakeups): its
token, and the releases of a job slot it has not been told about.

Park and wake each first write their half (`wake_token`, or a name added to `wake_pending`) and then try
to claim both at once with one conditional update that removes them. DynamoDB serializes the writes to
one item, so whichever half is written second sees the other, and only one claim can succeed: the task
is resumed exactly once, whether the event came before the token was stored or after.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from osbatch.dal.items import condition_failed
from osbatch.dal.keys import job_key

WAKE_TOKEN = "wake_token"
WAKE_PENDING = "wake_pending"
SLOT_TOKEN = "slot_token"
SLOT_PENDING = "slot_pending"


@dataclass(frozen=True)
class Claim:
    token: str
    finished: frozenset[str]  # the remote jobs whose events this wake-up answers


class Wakeups:
    # The two halves' attributes on the job item; SlotWakeups keeps its own pair, so a wake for a slot
    # never resumes a WaitForJob, nor the other way round.
    token_attribute = WAKE_TOKEN
    pending_attribute = WAKE_PENDING

    def __init__(self, table: Any) -> None:
        """`table` is a boto3 DynamoDB Table resource: the job table."""
        self._table = table

    def store_token(self, job_id: str, token: str) -> None:
        """The parked task's token; replaces the token of an earlier wait, which has timed out by now."""
        self._table.update_item(
            Key=job_key(job_id),
            UpdateExpression="SET #token = :token",
            ExpressionAttributeNames={"#token": self.token_attribute},
            ExpressionAttributeValues={":token": token},
        )

    def note_finished(self, job_id: str, remote_names: Iterable[str]) -> bool:
        """Record remote jobs that finished; False if there is no such job (nothing is written then)."""
        try:
            self._table.update_item(
                Key=job_key(job_id),
                UpdateExpression="ADD #pending :names",
                ConditionExpression="attribute_exists(job_id)",
                ExpressionAttributeNames={"#pending": self.pending_attribute},
                ExpressionAttributeValues={":names": set(remote_names)},
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def claim(self, job_id: str) -> Claim | None:
        """Take the token and the pending finishes together, if both are there; None otherwise."""
        try:
            response = self._table.update_item(
                Key=job_key(job_id),
                UpdateExpression="REMOVE #token, #pending",
                ConditionExpression="attribute_exists(#token) AND attribute_exists(#pending)",
                ExpressionAttributeNames={"#token": self.token_attribute, "#pending": self.pending_attribute},
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if condition_failed(error):
                return None
            raise
        old = response["Attributes"]
        return Claim(
            str(old[self.token_attribute]), frozenset(str(name) for name in old[self.pending_attribute])
        )

    def job_exists(self, job_id: str) -> bool:
        response = self._table.get_item(
            Key=job_key(job_id), ProjectionExpression="job_id", ConsistentRead=True
        )
        return "Item" in response


class SlotWakeups(Wakeups):
    """A job parked in WaitForSlot (refused a job slot): its token, and the jobs whose slot release it
    has not been told about (steps/support/slot_wake.py). A note left after the job took its slot is
    harmless: a job that holds a slot never waits for one again (JobSlots.acquire_slot)."""

    token_attribute = SLOT_TOKEN
    pending_attribute = SLOT_PENDING
