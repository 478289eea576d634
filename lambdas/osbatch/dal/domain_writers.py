"""One ingest concurrency limit per OpenSearch domain, shared by every job writing to it.

A hundred jobs finishing together would otherwise put a hundred Maps' writers on one domain. Each ingest
chunk holds a writer lease while it bulks: a map entry `leases.<writer>` (its expiry) in one job-table item
per domain, taken only while fewer than `limit` live leases exist (one conditional UpdateItem, so the check
and the take are atomic across Lambdas). A killed Lambda's lease lapses at its expiry instead of leaking.

The limit adapts, additive increase and multiplicative decrease, between `floor` and `ceiling`:
- it halves the moment a writer is answered 429 (`throttled`), unless it was halved after that request went
  out: the 429s of requests sent before a halving answer the overload it already reacted to (TCP's
  congestion control likewise halves once per window, RFC 5681);
- it rises by one once `limit` requests sent since it last changed were taken without a 429 (`succeeded`):
  additive increase once per window of requests, TCP's congestion avoidance again. (It first rose per chunk
  that ended without a 429; a million records on a 1 GB node then ran at one writer to the end, every
  chunk having met the early 429s: 1,336 docs/s against 3,436 with eight writers.)

A lower limit takes effect within the chunks already running, not only for the next ones: before each bulk
request a writer asks for its turn (`wait_turn`), and only the `limit` oldest leases may write; the newer
ones pause between requests until older writers finish. Halving only for the chunks that start next came too
late for a million records on a 1 GB node (docs/reliability.md, Load): its 8 chunks were all running, each
with requests the node's indexing pressure limit refused until their retries ran out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from osbatch.dal.items import condition_failed
from osbatch.dal.keys import domain_writers_key
from osbatch.retry import Backoff, Hooks, TryAgain, before_deadline, retrying

# Polling for a free slot: 0.5 s doubling to 10 s, each wait spread over [0.5, 1.5) of that.
NO_HOOKS = Hooks()  # time.sleep and random.random
SLOT_POLL = Backoff(initial=0.5, cap=10.0, low=0.5, high=1.5)


class NoWriterSlot(RuntimeError):
    """Every writer slot of the domain stayed taken, or the chunk's turn to write did not come back, for as
    long as the chunk was willing to wait. The workflow retries the chunk later (infra/workflow.py); the retry
    resumes from the chunk's last checkpoint (ingest/checkpoints.py)."""


# The Map child's Retry rule for a chunk that found no writer slot; Lambda reports the class name.
NO_WRITER_SLOT_ERRORS = (NoWriterSlot.__name__,)


@dataclass(frozen=True)
class LimitSettings:
    initial: int = 8
    floor: int = 1
    ceiling: int = 64
    lease_seconds: int = 900  # a Lambda's longest life: a lease outliving its holder blocks no one for long


class DomainWriters:
    def __init__(
        self,
        table: Any,
        domain: str,
        settings: LimitSettings = LimitSettings(),
        *,
        clock: Callable[[], float] = time.time,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        """`table` is the job table's boto3 Table resource; `domain` names the cluster (its endpoint);
        `hooks`, the sleep and random source of the polling for a free slot."""
        self._table = table
        self._key = domain_writers_key(domain)
        self._settings = settings
        self._clock = clock
        self._hooks = hooks

    def acquire(self, writer: str, *, wait_seconds: float) -> None:
        """Take a writer slot, waiting (with jittered polling) while all are taken."""
        self._ensure_item()
        hooks = replace(self._hooks, before_sleep=lambda _: self._expire_lapsed())
        polls = retrying(SLOT_POLL, before_deadline(self._clock() + wait_seconds, self._clock), hooks=hooks)
        for attempt in polls:
            with attempt:
                if self._try_acquire(writer):
                    return
                raise TryAgain
        raise NoWriterSlot(f"no ingest writer slot for {self._key['job_id']} within {wait_seconds}s")

    def release(self, writer: str) -> None:
        """Give the slot back."""
        self._table.update_item(
            Key=self._key,
            UpdateExpression="REMOVE leases.#w",
            ExpressionAttributeNames={"#w": writer},
        )

    def succeeded(self, sent_at: float) -> None:
        """A request sent at `sent_at` was taken without a 429. Counted only when sent after the limit last
        changed (it says nothing of a limit set later); the `limit`-th such request raises it by one."""
        try:
            item = self._table.update_item(
                Key=self._key,
                UpdateExpression="ADD clean_requests :one",
                # Never on a missing item: one without leases would refuse every acquire.
                ConditionExpression="attribute_exists(leases) AND "
                "(attribute_not_exists(changed_at) OR changed_at < :sent)",
                ExpressionAttributeValues={":one": 1, ":sent": Decimal(str(sent_at))},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if condition_failed(error):
                return
            raise
        current = int(item.get("limit", self._settings.initial))
        if int(item["clean_requests"]) >= current and current < self._settings.ceiling:
            self._change_limit(current, current + 1)

    def throttled(self, sent_at: float | None = None) -> None:
        """The domain answered 429 to a request sent at `sent_at` (default: now): halve the limit, unless it
        was halved since then."""
        settings = self._settings
        sent_at = self._clock() if sent_at is None else sent_at
        self._ensure_item()
        for _ in range(5):  # optimistic: retried when another writer changed the item at the same moment
            item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item", {})
            current = int(item.get("limit", settings.initial))
            wanted = max(settings.floor, current // 2)
            if wanted == current or sent_at <= float(item.get("halved_at", 0)):
                return
            if self._change_limit(current, wanted, halving=True):
                return

    def may_write(self, writer: str) -> bool:
        """Whether `writer` holds one of the `limit` oldest leases (a lease's expiry orders them: each is
        its taking time plus `lease_seconds`). A writer whose lease is gone is let through: it is writing
        already, and blocking it would only stall its chunk."""
        item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item", {})
        leases: dict[str, Any] = item.get("leases", {})
        if writer not in leases:
            return True
        seniority = sorted(leases, key=lambda held: (int(leases[held]), held))
        return seniority.index(writer) < int(item.get("limit", self._settings.initial))

    def wait_turn(
        self, writer: str, *, deadline: float, serialized: AbstractContextManager[Any] | None = None
    ) -> float:
        """Wait until `writer` may send a request (may_write), polling with jitter, and return the time its
        turn came (what `throttled` compares with the last halving); NoWriterSlot when its turn has not
        come by `deadline` (the chunk is then retried later, from its checkpoint). `serialized` is held
        around each read, not while sleeping between them."""
        polls = retrying(SLOT_POLL, before_deadline(deadline, self._clock), hooks=self._hooks)
        for attempt in polls:
            with attempt:
                with serialized or nullcontext():
                    allowed = self.may_write(writer)
                if allowed:
                    return self._clock()
                raise TryAgain
        raise NoWriterSlot(f"ingest writer {writer} paused for older writers past its deadline")

    def turns(self, writer: str, *, within_seconds: float) -> WriterTurns:
        """What `writer`'s bulk requests ask before going out and tell on a 429 (ingest/bulk.py WriteGate);
        its pauses end by `within_seconds` from now."""
        return WriterTurns(self, writer, self._clock() + within_seconds)

    def limit(self) -> int:
        item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item", {})
        return int(item.get("limit", self._settings.initial))

    def holders(self) -> list[str]:
        item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item", {})
        return sorted(item.get("leases", {}))

    def _ensure_item(self) -> None:
        try:
            self._table.put_item(
                Item={**self._key, "leases": {}, "limit": self._settings.initial},
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except ClientError as error:
            if not condition_failed(error):
                raise

    def _try_acquire(self, writer: str) -> bool:
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression="SET leases.#w = :expiry",
                # size() of a map is its number of entries: the check and the take are one atomic write.
                ConditionExpression="size(leases) < #limit OR attribute_exists(leases.#w)",
                ExpressionAttributeNames={"#w": writer, "#limit": "limit"},
                ExpressionAttributeValues={":expiry": int(self._clock()) + self._settings.lease_seconds},
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def _expire_lapsed(self) -> None:
        """Remove leases past their expiry, each only if it was not renewed meanwhile."""
        item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item", {})
        now = self._clock()
        for writer, expiry in item.get("leases", {}).items():
            if int(expiry) < now:
                self._conditional(
                    UpdateExpression="REMOVE leases.#w",
                    ConditionExpression="leases.#w = :expiry",
                    ExpressionAttributeNames={"#w": writer},
                    ExpressionAttributeValues={":expiry": expiry},
                )

    def _change_limit(self, current: int, wanted: int, *, halving: bool = False) -> bool:
        """Set the limit if it is still `current`, restarting the count of clean requests."""
        now = Decimal(str(self._clock()))
        return self._conditional(
            UpdateExpression="SET #limit = :wanted, changed_at = :now, clean_requests = :zero"
            + (", halved_at = :now" if halving else ""),
            ConditionExpression="#limit = :current",
            ExpressionAttributeNames={"#limit": "limit"},
            ExpressionAttributeValues={":wanted": wanted, ":current": current, ":now": now, ":zero": 0},
        )

    def _conditional(self, **kwargs: Any) -> bool:
        try:
            self._table.update_item(Key=self._key, **kwargs)
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True


class WriterTurns:
    """One chunk's view of its domain's limit, for its bulk writer's threads. boto3 resources are not
    thread-safe ("Multithreading or multiprocessing with resources", the boto3 guide): one call at a time."""

    def __init__(self, writers: DomainWriters, writer: str, deadline: float) -> None:
        self._writers, self._writer, self._deadline = writers, writer, deadline
        self._lock = threading.Lock()

    def wait_turn(self) -> float:
        # The lock is not held while waiting: another thread may report its request's outcome meanwhile.
        return self._writers.wait_turn(self._writer, deadline=self._deadline, serialized=self._lock)

    def throttled(self, turn: float) -> None:
        with self._lock:
            self._writers.throttled(sent_at=turn)

    def succeeded(self, turn: float) -> None:
        with self._lock:
            self._writers.succeeded(sent_at=turn)
