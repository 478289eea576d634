"""How many of one writer's bulk requests may be on the wire at once: halved on each 429 from the cluster.

A node refuses a bulk request with 429 `rejected_execution_exception` when the bytes of the requests it is
indexing pass its indexing pressure limit (`indexing_pressure.memory.limit`, 10% of the heap by default:
OpenSearch "Shard indexing backpressure" and "Indexing pressure" settings,
docs.opensearch.org/latest/tuning-your-cluster/availability-and-recovery/shard-indexing-backpressure/).
Retrying with backoff alone does not make that demand fit: 8 chunks with 2 requests of 8 MiB each in flight
ask a node with a 1 GB heap for more than its 107 MB, so requests keep losing the race until their retries
run out (bench/load.py, 1,000,000 records: 177,477 dead-lettered with that reason). So a writer that saw a
429 sends fewer requests at once for the rest of its chunk (multiplicative decrease, down to one); the next
chunk starts at the configured concurrency again. Across chunks, the per-domain writer limit
(dal/domain_writers.py) halves on the same 429 and pauses the newest running chunks. Retries wait outside
the limit, so a request sleeping in its backoff holds no slot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WireLimit:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._on_wire = 0
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots while a request is on the wire; waits while every slot is taken."""
        with self._changed:
            while self._on_wire >= self._limit:
                self._changed.wait()
            self._on_wire += 1
        try:
            yield
        finally:
            with self._changed:
                self._on_wire -= 1
                self._changed.notify_all()

    def throttled(self) -> None:
        """The cluster answered 429: halve the limit (at least one request still goes)."""
        with self._changed:
            self._limit = max(1, self._limit // 2)
