"""The slot queue (`slots#<pipeline>`, `slots`): which jobs of a pipeline hold one of its
max_jobs_in_flight remote-job slots, and the tickets of the jobs waiting for one, in first-asked order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from osbatch.dal.items import TableItems, condition_failed
from osbatch.dal.keys import WAITER_PREFIX, slots_key, waiter_ticket

# A waiting StartJob is retried at least every THROTTLE_MAX_DELAY_SECONDS (10 min, infra/workflow.py) and
# renews its ticket each time; one not renewed for three of those has no execution left to take a slot.
WAITER_GONE_SECONDS = 1800
SLOT_ATTEMPTS = 5  # optimistic writes per call before reporting "wait" (the workflow retries anyway)


class JobSlots(TableItems):
    def acquire_slot(self, pipeline: str, job_id: str, limit: int, now: float) -> bool:
        """Take one of the pipeline's `limit` job slots for job_id; False when it must wait.

        Waiting jobs start in the order they first asked: a refused job takes a ticket (an attribute
        `w#<ticket>` of the slots item), and a free slot goes to the oldest live ticket. Every change
        to the item bumps `version` and is conditional on the version it read, so two StartJobs racing
        for the last slot cannot both get it. A job that already holds a slot (a retried StartJob) gets
        it again. A ticket not renewed for WAITER_GONE_SECONDS belongs to an execution that stopped
        without FailJob (aborted, timed out) and is skipped, so it cannot block the queue; the
        execution-ended safety net (steps/execution_ended.py) releases it at once, this is the fallback.
        """
        for _ in range(SLOT_ATTEMPTS):
            item = self._slots_item(pipeline)
            holders = set(item.get("holders", set()))
            if job_id in holders:
                return True
            waiters = _waiters(item)
            mine = next((ticket for ticket, waiter in waiters.items() if waiter["job"] == job_id), None)
            if mine is None:
                ticket = waiter_ticket(int(item.get("next_ticket", 0)))
                self._write_slots(
                    pipeline,
                    item,
                    "SET #ticket = :waiter, next_ticket = if_not_exists(next_ticket, :zero) + :one",
                    names={"#ticket": ticket},
                    values={":waiter": {"job": job_id, "seen": Decimal(str(now))}, ":zero": 0, ":one": 1},
                )
                continue  # decide on the item as it is now, with this job in the queue
            live = sorted(
                ticket
                for ticket, waiter in waiters.items()
                if ticket == mine or now - float(waiter["seen"]) < WAITER_GONE_SECONDS
            )
            gone = [ticket for ticket in waiters if ticket not in live]
            if mine not in live[: max(0, limit - len(holders))]:
                # Not this job's turn: renew its ticket, so it is not taken for gone.
                self._renew(pipeline, mine, now)
                return False
            removed = [mine, *gone]
            names = {f"#r{n}": ticket for n, ticket in enumerate(removed)}
            if self._write_slots(
                pipeline,
                item,
                "ADD holders :job REMOVE " + ", ".join(names),
                names=names,
                values={":job": {job_id}},
            ):
                return True
        return False  # the item kept changing under us: a retried StartJob tries again

    def release_slot(self, pipeline: str, job_id: str) -> None:
        """Give the job's slot back, and its ticket if it was still waiting; a no-op when it has neither.
        Called on every terminal state."""
        for _ in range(SLOT_ATTEMPTS):
            item = self._slots_item(pipeline)
            tickets = [ticket for ticket, waiter in _waiters(item).items() if waiter["job"] == job_id]
            names = {f"#r{n}": ticket for n, ticket in enumerate(tickets)}
            remove = (" REMOVE " + ", ".join(names)) if names else ""
            if self._write_slots(
                pipeline, item, "DELETE holders :job" + remove, names=names, values={":job": {job_id}}
            ):
                return

    def next_waiters(self, pipeline: str, limit: int, now: float) -> list[str]:
        """The jobs whose turn it is: the oldest live tickets, as many as the pipeline has free slots.
        acquire_slot gives a free slot to exactly these, so waking them wakes no one who must wait on."""
        item = self._slots_item(pipeline)
        free = max(0, limit - len(set(item.get("holders", set()))))
        live = sorted(
            (ticket, str(waiter["job"]))
            for ticket, waiter in _waiters(item).items()
            if now - float(waiter["seen"]) < WAITER_GONE_SECONDS
        )
        return [job for _, job in live[:free]]

    def _renew(self, pipeline: str, ticket: str, now: float) -> None:
        try:
            self._table.update_item(
                Key=slots_key(pipeline),
                UpdateExpression="SET #ticket.seen = :now",
                ConditionExpression="attribute_exists(#ticket)",
                ExpressionAttributeNames={"#ticket": ticket},
                ExpressionAttributeValues={":now": Decimal(str(now))},
            )
        except ClientError as error:
            if not condition_failed(error):
                raise  # a ticket removed meanwhile is taken again on the next attempt

    def _write_slots(
        self,
        pipeline: str,
        item: dict[str, Any],
        update: str,
        *,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        """One change to the slots item, made only if nobody changed it since `item` was read."""
        version = int(item.get("version", 0))
        condition = "attribute_not_exists(version)" if "version" not in item else "version = :read"
        if update.startswith("SET "):
            expression = update.replace("SET ", "SET version = :next, ", 1)
        else:
            expression = f"{update} SET version = :next"
        try:
            self._table.update_item(
                Key=slots_key(pipeline),
                UpdateExpression=expression,
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues={
                    **values,
                    ":next": version + 1,
                    **({":read": version} if "version" in item else {}),
                },
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def _slots_item(self, pipeline: str) -> dict[str, Any]:
        item: dict[str, Any] = (
            self._table.get_item(Key=slots_key(pipeline), ConsistentRead=True).get("Item") or {}
        )
        return item

    def slot_holders(self, pipeline: str) -> set[str]:
        item = self._table.get_item(Key=slots_key(pipeline), ConsistentRead=True).get("Item")
        return set(item.get("holders", set())) if item else set()


def _waiters(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: value for name, value in item.items() if name.startswith(WAITER_PREFIX)}
