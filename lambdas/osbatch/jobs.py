"""The job table: one item per job (`item = "job"`) and one per ingest chunk (`item = "chunk#NNNNN"`).

This is osbatch's Task API: `osbatch jobs` and `osbatch status` read it, and every workflow step writes
the transitions it makes. Chunk counts are separate items written with a plain put, so a retried chunk
replaces its own numbers instead of adding to them; totals are summed when the job finalizes. While a chunk
runs, its item is its checkpoint (offset and counts together); only a finished chunk's item counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from osbatch.contracts import JOBS_BY_PIPELINE_INDEX
from osbatch.ingest.models import Checkpoint
from osbatch.models import JobStateName, SourceObject

JOB_ITEM = "job"
CHUNK_PREFIX = "chunk#"
# One item per pipeline holds the ids of the jobs that have a remote-job slot (a string set).
SLOTS_ITEM = "slots"
SLOTS_KEY_PREFIX = "slots#"
WAITER_PREFIX = "w#"  # a waiting job's ticket on the slots item: w#<12-digit ticket number>
# A waiting StartJob is retried at least every THROTTLE_MAX_DELAY_SECONDS (10 min, infra/workflow.py) and
# renews its ticket each time; one not renewed for three of those has no execution left to take a slot.
WAITER_GONE_SECONDS = 1800
SLOT_ATTEMPTS = 5  # optimistic writes per call before reporting "wait" (the workflow retries anyway)
# One item per index being bulk-loaded (search/bulk_load.py): the jobs loading it and its saved settings.
BULK_LOAD_PREFIX = "bulk-load#"
LEASE_ITEM = "lease"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ChunkCounts:
    lines: int = 0
    indexed: int = 0
    dead_lettered: int = 0

    def __add__(self, other: ChunkCounts) -> ChunkCounts:
        return ChunkCounts(
            self.lines + other.lines, self.indexed + other.indexed, self.dead_lettered + other.dead_lettered
        )


@dataclass(frozen=True)
class LeaseLeft:
    """What a bulk-load lease holds after one loader left it."""

    remaining: frozenset[str]
    saved: dict[str, Any] | None


@dataclass(frozen=True)
class ChunkTally:
    """What the chunks of one ingest plan reported: summed counts, and which chunks did."""

    counts: ChunkCounts
    reported: frozenset[int]
    # Each reported chunk's lines: which output object came up short (steps/dropped.py).
    lines: Mapping[int, int] = field(default_factory=dict)

    def missing(self, planned: int) -> list[int]:
        return [chunk for chunk in range(planned) if chunk not in self.reported]


class JobTable:
    def __init__(self, table: Any, clock: Callable[[], str] = utc_now) -> None:
        """`table` is a boto3 DynamoDB Table resource (injected so tests and the local runtime choose it)."""
        self._table = table
        self._clock = clock

    def create(self, job_id: str, pipeline: str, source: SourceObject) -> bool:
        """Record a new job; False if it already exists (a duplicate event), which is not an error."""
        now = self._clock()
        item = {
            "job_id": job_id,
            "item": JOB_ITEM,
            "pipeline": pipeline,
            "state": JobStateName.CREATED.value,
            "source": source.uri,
            "etag": source.etag,
            "size": source.size,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update(self, job_id: str, state: JobStateName | None = None, **fields: Any) -> None:
        """Set the state and any other attributes; `None` values are skipped."""
        values = {name: value for name, value in fields.items() if value is not None}
        if state is not None:
            values["state"] = state.value
        values["updated_at"] = self._clock()
        names = {f"#{name}": name for name in values}
        self._table.update_item(
            Key={"job_id": job_id, "item": JOB_ITEM},
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":{name}": value for name, value in values.items()},
        )

    def throttled_since(self, job_id: str, now: float) -> float:
        """When StartJob was first throttled (set once, on the first throttled attempt): the start of the
        pipeline's retry_time_window. Conditional on nothing, so every retry reads the same first time."""
        response = self._table.update_item(
            Key={"job_id": job_id, "item": JOB_ITEM},
            UpdateExpression="SET throttled_since = if_not_exists(throttled_since, :now)",
            ExpressionAttributeValues={":now": Decimal(str(now))},
            ReturnValues="ALL_NEW",
        )
        return float(response["Attributes"]["throttled_since"])

    def get(self, job_id: str) -> dict[str, Any] | None:
        response = self._table.get_item(Key={"job_id": job_id, "item": JOB_ITEM}, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return _plain(item) if item else None

    def put_chunk(self, job_id: str, chunk: int, counts: ChunkCounts) -> None:
        """A chunk's final counts. A plain put: a re-run chunk replaces its numbers (and its checkpoint)."""
        self._table.put_item(Item={**self._chunk_key(job_id, chunk), **_counts(counts)})

    def save_checkpoint(self, job_id: str, chunk: int, checkpoint: Checkpoint) -> None:
        """A chunk's settled prefix, counts included, in one item: the two can never disagree."""
        counts = ChunkCounts(checkpoint.lines, checkpoint.indexed, checkpoint.dead_lettered)
        item = {**self._chunk_key(job_id, chunk), **_counts(counts)}
        item.update(checkpoint=checkpoint.offset, segment=checkpoint.segment)
        self._table.put_item(Item=item)

    def load_checkpoint(self, job_id: str, chunk: int) -> Checkpoint | None:
        """The checkpoint an earlier attempt left; None for a chunk not started or already finished.

        A finished chunk re-run (a retried Map) starts over: its counts are replaced, never added to."""
        response = self._table.get_item(
            Key={"job_id": job_id, "item": f"{CHUNK_PREFIX}{chunk:05d}"}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item or "checkpoint" not in item:
            return None
        return Checkpoint(
            offset=int(item["checkpoint"]),
            lines=int(item["lines"]),
            indexed=int(item["indexed"]),
            dead_lettered=int(item["dead_lettered"]),
            segment=int(item["segment"]),
        )

    def _chunk_key(self, job_id: str, chunk: int) -> dict[str, Any]:
        return {"job_id": job_id, "item": f"{CHUNK_PREFIX}{chunk:05d}", "updated_at": self._clock()}

    def chunk_totals(self, job_id: str, planned: int | None = None) -> ChunkTally:
        """Summed counts over the chunk items, and which chunks reported.

        With `planned`, only chunks 0..planned-1 count: items left by an earlier plan of the same job that
        had more chunks are not part of this one.
        """
        total, lines = ChunkCounts(), {}
        for item in self._query(
            KeyConditionExpression=Key("job_id").eq(job_id) & Key("item").begins_with(CHUNK_PREFIX),
            ConsistentRead=True,
        ):
            chunk = int(str(item["item"]).removeprefix(CHUNK_PREFIX))
            if (planned is not None and chunk >= planned) or "checkpoint" in item:
                continue  # another plan's, or a chunk still under way (or killed): not reported
            total += ChunkCounts(int(item["lines"]), int(item["indexed"]), int(item["dead_lettered"]))
            lines[chunk] = int(item["lines"])
        return ChunkTally(total, frozenset(lines), lines)

    def bulk_load_active(self, index: str) -> bool:
        response = self._table.get_item(Key=_lease_key(index), ConsistentRead=True)
        return bool(response.get("Item", {}).get("loaders"))

    def join_bulk_load(self, index: str, job_id: str) -> bool:
        """Add job_id to the index's loaders; True if no settings are saved yet (this job saves them)."""
        response = self._table.update_item(
            Key=_lease_key(index),
            UpdateExpression="ADD loaders :job",
            ExpressionAttributeValues={":job": {job_id}},
            ReturnValues="ALL_NEW",
        )
        return "saved" not in response.get("Attributes", {})

    def save_bulk_load_settings(self, index: str, saved: dict[str, Any]) -> None:
        """Keep the first loader's reading only: a later one may read the already-relaxed settings."""
        self._conditional(
            Key=_lease_key(index),
            UpdateExpression="SET saved = :saved",
            ConditionExpression="attribute_not_exists(saved)",
            ExpressionAttributeValues={":saved": saved},
        )

    def leave_bulk_load(self, index: str, job_id: str) -> LeaseLeft | None:
        """Remove job_id from the loaders; None if it was not one of them."""
        try:
            response = self._table.update_item(
                Key=_lease_key(index),
                UpdateExpression="DELETE loaders :job",
                ConditionExpression="contains(loaders, :id)",
                ExpressionAttributeValues={":job": {job_id}, ":id": job_id},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        item = response.get("Attributes", {})
        return LeaseLeft(frozenset(item.get("loaders", set())), item.get("saved"))

    def release_bulk_load(self, index: str) -> None:
        """Forget the saved settings once restored, unless a loader joined meanwhile (it restores them)."""
        self._conditional(
            Key=_lease_key(index),
            UpdateExpression="REMOVE saved",
            ConditionExpression="attribute_not_exists(loaders)",
        )

    def _conditional(self, **kwargs: Any) -> bool:
        try:
            self._table.update_item(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def list_jobs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first. With a pipeline this is one GSI query; without, a filtered scan (small tables)."""
        if pipeline:
            items = self._query(
                IndexName=JOBS_BY_PIPELINE_INDEX,
                KeyConditionExpression=Key("pipeline").eq(pipeline),
                ScanIndexForward=False,
            )
            jobs = [_plain(item) for _, item in zip(range(limit), items, strict=False)]
        else:
            jobs = [_plain(item) for item in self._scan(FilterExpression=Attr("item").eq(JOB_ITEM))]
            jobs.sort(key=lambda job: job.get("created_at", ""), reverse=True)
            jobs = jobs[:limit]
        return jobs

    def acquire_slot(self, pipeline: str, job_id: str, limit: int, now: float) -> bool:
        """Take one of the pipeline's `limit` job slots for job_id; False when it must wait.

        Waiting jobs start in the order they first asked: a refused job takes a ticket (an attribute
        `w#<ticket>` of the slots item), and a free slot goes to the oldest live ticket. Every change
        to the item bumps `version` and is conditional on the version it read, so two StartJobs racing
        for the last slot cannot both get it. A job that already holds a slot (a retried StartJob) gets
        it again. A ticket not renewed for WAITER_GONE_SECONDS belongs to an execution that stopped
        without FailJob (aborted, timed out) and is skipped, so it cannot block the queue.
        """
        for _ in range(SLOT_ATTEMPTS):
            item = self._slots_item(pipeline)
            holders = set(item.get("holders", set()))
            if job_id in holders:
                return True
            waiters = _waiters(item)
            mine = next((ticket for ticket, waiter in waiters.items() if waiter["job"] == job_id), None)
            if mine is None:
                ticket = f"{WAITER_PREFIX}{int(item.get('next_ticket', 0)):012d}"
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

    def _renew(self, pipeline: str, ticket: str, now: float) -> None:
        try:
            self._table.update_item(
                Key=self._slots_key(pipeline),
                UpdateExpression="SET #ticket.seen = :now",
                ConditionExpression="attribute_exists(#ticket)",
                ExpressionAttributeNames={"#ticket": ticket},
                ExpressionAttributeValues={":now": Decimal(str(now))},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
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
                Key=self._slots_key(pipeline),
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
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _slots_key(self, pipeline: str) -> dict[str, str]:
        return {"job_id": f"{SLOTS_KEY_PREFIX}{pipeline}", "item": SLOTS_ITEM}

    def _slots_item(self, pipeline: str) -> dict[str, Any]:
        item: dict[str, Any] = (
            self._table.get_item(Key=self._slots_key(pipeline), ConsistentRead=True).get("Item") or {}
        )
        return item

    def slot_holders(self, pipeline: str) -> set[str]:
        item = self._table.get_item(
            Key={"job_id": f"{SLOTS_KEY_PREFIX}{pipeline}", "item": SLOTS_ITEM}, ConsistentRead=True
        ).get("Item")
        return set(item.get("holders", set())) if item else set()

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return _pages(self._table.query, kwargs)

    def _scan(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return _pages(self._table.scan, kwargs)


class TableProgress:
    """One chunk's checkpoint in the job table, as ingest_chunk's ChunkProgress."""

    def __init__(self, jobs: JobTable, job_id: str, chunk: int) -> None:
        self._jobs, self._job_id, self._chunk = jobs, job_id, chunk

    def load(self) -> Checkpoint | None:
        return self._jobs.load_checkpoint(self._job_id, self._chunk)

    def save(self, checkpoint: Checkpoint) -> None:
        self._jobs.save_checkpoint(self._job_id, self._chunk, checkpoint)


def _pages(operation: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a paginated Query or Scan."""
    while True:
        page = operation(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs = {**kwargs, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _counts(counts: ChunkCounts) -> dict[str, int]:
    return {"lines": counts.lines, "indexed": counts.indexed, "dead_lettered": counts.dead_lettered}


def _lease_key(index: str) -> dict[str, str]:
    return {"job_id": f"{BULK_LOAD_PREFIX}{index}", "item": LEASE_ITEM}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB returns Decimals; callers want ints (all our numbers are counts)."""
    return {key: int(value) if isinstance(value, Decimal) else value for key, value in item.items()}


def _waiters(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: value for name, value in item.items() if name.startswith(WAITER_PREFIX)}
