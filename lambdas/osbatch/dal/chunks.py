"""Chunk items (`item = "chunk#NNNNN"`): one per ingest chunk of a job, its counts and checkpoint.

Chunk counts are separate items written with a plain put, so a retried chunk replaces its own numbers
instead of adding to them; totals are summed when the job finalizes. While a chunk runs, its item is its
checkpoint (offset and counts together); only a finished chunk's item counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Key

from osbatch.dal.items import TableItems
from osbatch.dal.keys import CHUNK_PREFIX, chunk_key, chunk_number
from osbatch.models.ingest import Checkpoint


@dataclass(frozen=True)
class ChunkCounts:
    lines: int = 0
    indexed: int = 0
    dead_lettered: int = 0
    throttled: int = 0  # bulk attempts the domain answered 429, and that were retried (ingest/bulk.py)

    def __add__(self, other: ChunkCounts) -> ChunkCounts:
        return ChunkCounts(
            self.lines + other.lines,
            self.indexed + other.indexed,
            self.dead_lettered + other.dead_lettered,
            self.throttled + other.throttled,
        )


@dataclass(frozen=True)
class ChunkTally:
    """What the chunks of one ingest plan reported: summed counts, and which chunks did."""

    counts: ChunkCounts
    reported: frozenset[int]
    # Each reported chunk's lines: which output object came up short (steps/support/dropped.py).
    lines: Mapping[int, int] = field(default_factory=dict)

    def missing(self, planned: int) -> list[int]:
        return [chunk for chunk in range(planned) if chunk not in self.reported]


class ChunkItems(TableItems):
    def put_chunk(self, job_id: str, chunk: int, counts: ChunkCounts) -> None:
        """A chunk's final counts. A plain put: a re-run chunk replaces its numbers (and its checkpoint)."""
        self._table.put_item(Item={**self._chunk_item(job_id, chunk), **_counts(counts)})

    def save_checkpoint(self, job_id: str, chunk: int, checkpoint: Checkpoint) -> None:
        """A chunk's settled prefix, counts included, in one item: the two can never disagree."""
        counts = ChunkCounts(checkpoint.lines, checkpoint.indexed, checkpoint.dead_lettered)
        item = {**self._chunk_item(job_id, chunk), **_counts(counts)}
        item.update(checkpoint=checkpoint.offset, segment=checkpoint.segment)
        self._table.put_item(Item=item)

    def load_checkpoint(self, job_id: str, chunk: int) -> Checkpoint | None:
        """The checkpoint an earlier attempt left; None for a chunk not started or already finished.

        A finished chunk re-run (a retried Map) starts over: its counts are replaced, never added to."""
        response = self._table.get_item(Key=chunk_key(job_id, chunk), ConsistentRead=True)
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
            chunk = chunk_number(str(item["item"]))
            if (planned is not None and chunk >= planned) or "checkpoint" in item:
                continue  # another plan's, or a chunk still under way (or killed): not reported
            total += ChunkCounts(
                int(item["lines"]),
                int(item["indexed"]),
                int(item["dead_lettered"]),
                int(item.get("throttled", 0)),  # items written before the count existed have none
            )
            lines[chunk] = int(item["lines"])
        return ChunkTally(total, frozenset(lines), lines)

    def live_counts(self, job_id: str) -> tuple[ChunkCounts, int]:
        """Counts so far over every chunk item, running chunks' checkpoints included, and how many chunks
        have finished: what a progress display shows while the job ingests (not its accounting, which
        is `chunk_totals`'s)."""
        total, finished = ChunkCounts(), 0
        for item in self.chunk_items(job_id):
            total += ChunkCounts(int(item["lines"]), int(item["indexed"]), int(item["dead_lettered"]))
            finished += "checkpoint" not in item
        return total, finished

    def chunk_items(self, job_id: str) -> list[dict[str, Any]]:
        """The job's chunk items as stored (counts, `updated_at`, a running chunk's `checkpoint`)."""
        return list(
            self._query(
                KeyConditionExpression=Key("job_id").eq(job_id) & Key("item").begins_with(CHUNK_PREFIX)
            )
        )

    def _chunk_item(self, job_id: str, chunk: int) -> dict[str, Any]:
        return {**chunk_key(job_id, chunk), "updated_at": self._clock()}


class TableProgress:
    """One chunk's checkpoint in the job table, as ingest_chunk's ChunkProgress."""

    def __init__(self, chunks: ChunkItems, job_id: str, chunk: int) -> None:
        self._chunks, self._job_id, self._chunk = chunks, job_id, chunk

    def load(self) -> Checkpoint | None:
        return self._chunks.load_checkpoint(self._job_id, self._chunk)

    def save(self, checkpoint: Checkpoint) -> None:
        self._chunks.save_checkpoint(self._job_id, self._chunk, checkpoint)


def _counts(counts: ChunkCounts) -> dict[str, int]:
    return {
        "lines": counts.lines,
        "indexed": counts.indexed,
        "dead_lettered": counts.dead_lettered,
        "throttled": counts.throttled,
    }
