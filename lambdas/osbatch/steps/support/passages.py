"""Prepare's chunked records: each record's text cut into passages (osbatch.chunking), sent as its backend's
input lines, with the source record kept for the join (steps/support/passage_join.py).

A record that gives no passage, or more than the config's max_chunk_limit, or more inputs than one remote
job of the backend takes, is dead-lettered at stage `chunk` with a reason that says what to change; no
record is ever sent in part. The source record keeps its passages' offsets in its bookkeeping
(`{"line", "passages", "spans": [[start, end], ...]}`), so the join can give every vector its text and
offsets whatever the service echoes back.
"""

from __future__ import annotations

from typing import Any, Protocol

from osbatch import jsonlines
from osbatch.backends.base import BatchBackend, InputLimits, PassageInput
from osbatch.chunking import Chunker, NotChunkable
from osbatch.config import PipelineConfig
from osbatch.incremental.check import stamp
from osbatch.ingest.dead_letter import Stage
from osbatch.ingest.records import require_text
from osbatch.record_paths import BOOKKEEPING_KEY, RecordPath
from osbatch.steps.support.parts import LineTooBig, PartWriter
from osbatch.steps.support.passage_join import PassageJoiner


class DeadLetters(Protocol):
    def add(
        self, *, stage: Stage, reason: str, record: Any, line: int | None = None, offset: int | None = None
    ) -> None: ...


def keeps_source(config: PipelineConfig, backend: BatchBackend) -> bool:
    """Whether Prepare keeps the source records and PlanIngest joins the output onto them: for backends
    whose output lacks the record, and for every chunked pipeline (its vectors are grouped per record)."""
    return backend.joins_source or config.source.chunking is not None


def passage_joiner(config: PipelineConfig) -> PassageJoiner | None:
    """PlanIngest's joiner of a chunked pipeline's passage outputs (None when it does not chunk)."""
    if config.source.chunking is None:
        return None
    path, expression = RecordPath(config.source.text_path), config.source.text_path
    return PassageJoiner(lambda record: require_text(record, path, expression))


class PassageWriter:
    """Writes each valid record as its passages; counts the passages sent."""

    def __init__(
        self, chunker: Chunker, backend: BatchBackend, config: PipelineConfig, limits: InputLimits
    ) -> None:
        self._chunker, self._backend, self._limits = chunker, backend, limits
        self._holder = RecordPath(config.source.text_path).holding
        self.sent = 0

    def inputs(self, text: str) -> int:
        """The model inputs a record's text makes (its passages; 1 for one the chunker refuses): what an
        unchanged record saves (osbatch.incremental)."""
        passages = self._chunker.chunk(text)
        return 1 if isinstance(passages, NotChunkable) else len(passages)

    def write(
        self,
        parts: PartWriter,
        record: dict[str, Any],
        line: int,
        text: str,
        dead_letters: DeadLetters,
        fields: dict[str, str] | None = None,
    ) -> bool:
        """Send the record's passages; False when it was dead-lettered instead. `fields` (the fingerprint and
        origin, osbatch.incremental) go into the kept source record, which the join indexes."""
        passages = self._chunker.chunk(text)
        if isinstance(passages, NotChunkable):
            dead_letters.add(line=line, stage="chunk", reason=passages.reason, record=record)
            return False
        inputs = [PassageInput(number, p.text, p.start, p.end) for number, p in enumerate(passages)]
        lines = self._backend.passage_lines(line, inputs, self._holder)
        too_big = self._too_big(lines)
        if too_big is not None:
            dead_letters.add(line=line, stage="chunk", reason=too_big, record=record)
            return False
        spans = [[passage.start, passage.end] for passage in passages]
        source = {**record, BOOKKEEPING_KEY: {"line": line, "passages": len(passages), "spans": spans}}
        if fields:
            source = stamp(source, fields)
        try:
            parts.write_record(lines, source)
        except LineTooBig as refusal:
            dead_letters.add(line=line, stage="chunk", reason=str(refusal), record=record)
            return False
        self.sent += len(passages)
        return True

    def _too_big(self, lines: list[tuple[dict[str, Any], int]]) -> str | None:
        """Why the record cannot go in one input file of the backend (None if it can)."""
        inputs = sum(count for _, count in lines)
        if inputs > self._limits.max_records_per_file:
            return (
                f"the text gives {inputs} passages, over the {self._limits.max_records_per_file} inputs one "
                "input file of the backend takes; raise token_limit or split the record"
            )
        size = sum(len(jsonlines.dump_line(line)) for line, _ in lines)
        if size > self._limits.max_bytes_per_file:
            return (
                f"the record's passages take {size} bytes, over the {self._limits.max_bytes_per_file} "
                "bytes of one input file of the backend; split the record"
            )
        return None
