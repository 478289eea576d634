"""One ingest concurrency limit per OpenSearch domain, shared by every job writing to it.

A hundred jobs finishing together would otherwise put a hundred Maps' writers on one domain. Each ingest
chunk holds a writer lease while it bulks: a map entry `leases.<writer>` (its expiry) in one job-table item
per domain, taken only while fewer than `limit` live leases exist (one conditional UpdateItem, so the check
and the take are atomic across Lambdas). A killed Lambda's lease lapses at its expiry instead of leaking.

The limit adapts, additive increase and multiplicative decrease: a chunk that saw 429s halves it, a chunk
that saw none raises it by one, between `floor` and `ceiling`. Writers therefore settle near the most the
domain takes without rejecting, however many jobs there are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from osbatch.dal.items import condition_failed
from osbatch.dal.keys import domain_writers_key
from osbatch.retry import Backoff, Hooks, TryAgain, before_deadline, retrying

# Polling for a free slot: 0.5 s doubling to 10 s, each wait spread over [0.5, 1.5) of that.
NO_HOOKS = Hooks()  # time.sleep and random.random
SLOT_POLL = Backoff(initial=0.5, cap=10.0, low=0.5, high=1.5)


class NoWriterSlot(RuntimeError):
    """Every writer slot of the domain stayed taken for as long as the chunk was willing to wait. The
    workflow retries the chunk later (infra/workflow.py): it took nothing, so the retry starts afresh."""


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

    def release(self, writer: str, *, throttled: bool) -> None:
        """Give the slot back, and adapt the limit to what this writer saw."""
        self._table.update_item(
            Key=self._key,
            UpdateExpression="REMOVE leases.#w",
            ExpressionAttributeNames={"#w": writer},
        )
        self._adapt(throttled)

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

    def _adapt(self, throttled: bool) -> None:
        settings = self._settings
        for _ in range(5):  # optimistic: retried when another writer adapted the limit at the same moment
            current = self.limit()
            wanted = max(settings.floor, current // 2) if throttled else min(settings.ceiling, current + 1)
            if wanted == current or self._conditional(
                UpdateExpression="SET #limit = :wanted",
                ConditionExpression="#limit = :current",
                ExpressionAttributeNames={"#limit": "limit"},
                ExpressionAttributeValues={":wanted": wanted, ":current": current},
            ):
                return

    def _conditional(self, **kwargs: Any) -> bool:
        try:
            self._table.update_item(Key=self._key, **kwargs)
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True
