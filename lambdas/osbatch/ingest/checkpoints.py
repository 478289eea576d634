"""A chunk's checkpoints, taken without stalling its bulk requests.

A checkpoint says: every line before `offset` is indexed or in a stored dead letter, and these are the
counts. Waiting for every request in flight before each checkpoint (a drain) leaves the cluster's write
threads idle while the last requests finish and the next ones are built: on the local node, a single chunk
ran at 87% of a pre-serialized blaster that way (bench/ingest_node.py, 200k records, 2-core AMD EPYC).

So a checkpoint is marked, not awaited. When the chunk has read checkpoint_bytes, it cuts the request being
assembled and marks the offset; the lines after it start a new dead-letter segment. BulkWriter settles
requests in the order they were cut, so once the last request cut before the mark settles, everything
before the mark is settled: the mark's segment of dead letters is stored and the checkpoint saved, while the
requests after it are already in flight. A retry resumes from the last saved checkpoint and rewrites the
segment after it, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from osbatch.ingest.bulk import Settled
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.records import parse_record
from osbatch.models.ingest import Checkpoint, Failure

DeadLetters = Callable[[int], DeadLetterWriter]  # segment number -> the writer of that segment's dead letters


class ChunkProgress(Protocol):
    """Where a chunk's checkpoint is kept (the job table's chunk item)."""

    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


@dataclass
class _Segment:
    """The lines from one checkpoint to the next: their dead letters and what they came to."""

    letters: DeadLetterWriter
    lines: int = 0
    indexed: int = 0
    offset: int | None = None  # the checkpoint that ends it, once marked
    last_request: int = 0  # with the mark: the requests cut before it, which must settle first


class Checkpoints:
    """The segments of one chunk attempt, from `done` (where it starts) on. Single-threaded: BulkWriter calls
    `settled` in the caller's thread."""

    def __init__(self, done: Checkpoint, dead_letters: DeadLetters, progress: ChunkProgress | None) -> None:
        self.done = done
        self._dead_letters = dead_letters
        self._progress = progress
        self._segments = deque([_Segment(dead_letters(done.segment))])
        self._settled = 0

    @property
    def letters(self) -> DeadLetterWriter:
        """Where the dead letters of the lines being read go."""
        return self._segments[-1].letters

    def line_read(self) -> None:
        self._segments[-1].lines += 1

    def mark(self, offset: int, requests_cut: int) -> None:
        """Every line before `offset` is read and in the first `requests_cut` requests (or dead-lettered):
        checkpoint there once those settle."""
        segment = self._segments[-1]
        segment.offset, segment.last_request = offset, requests_cut
        # Segment numbers run on from the last saved checkpoint's: the deque holds done.segment onwards.
        self._segments.append(_Segment(self._dead_letters(self.done.segment + len(self._segments))))
        self._save_settled()

    def settled(self, settled: Settled) -> None:
        """BulkWriter's on_settled: one more request's outcome, in cut order."""
        self._settled += 1
        segment = next(s for s in self._segments if s.offset is None or self._settled <= s.last_request)
        segment.indexed += settled.indexed
        for failure in settled.failures:
            _dead_letter(failure, segment.letters)
        self._save_settled()

    def finish(self) -> Checkpoint:
        """Once every request settled: the chunk's totals, its last segment's dead letters stored."""
        assert len(self._segments) == 1, "finish() after every request settled"
        last = self._segments[0]
        return Checkpoint(
            offset=self.done.offset,
            lines=self.done.lines + last.lines,
            indexed=self.done.indexed + last.indexed,
            dead_lettered=self.done.dead_lettered + last.letters.close(),
            segment=self.done.segment,
        )

    def _save_settled(self) -> None:
        while len(self._segments) > 1 and self._settled >= self._segments[0].last_request:
            segment = self._segments.popleft()
            assert segment.offset is not None
            # The dead letters are stored before the checkpoint that counts them is saved.
            self.done = Checkpoint(
                offset=segment.offset,
                lines=self.done.lines + segment.lines,
                indexed=self.done.indexed + segment.indexed,
                dead_lettered=self.done.dead_lettered + segment.letters.close(),
                segment=self.done.segment + 1,
            )
            if self._progress is not None:
                self._progress.save(self.done)


def _dead_letter(failure: Failure, letters: DeadLetterWriter) -> None:
    ref = failure.ref
    record = parse_record(ref.raw, at_object_start=ref.offset == 0)
    letters.add(stage="index", reason=failure.reason, record=record, line=ref.line, offset=ref.offset)
