"""Ingest one chunk: read its lines, parse, map, bulk index, and dead-letter whatever fails at any stage.

A chunk is checkpointed as it goes (ingest_chunk), so a killed or timed-out attempt's retry resumes.

Every non-blank line the chunk owns ends up indexed or dead-lettered (ChunkResult checks the sum), so a job's
records_in = indexed + dead_lettered holds chunk by chunk. Blank lines are not records and are not counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from osbatch.config import CHECKPOINT_BYTES, BulkConfig, PipelineConfig
from osbatch.contracts import DOC_FIELDS_KEY
from osbatch.field_map import FieldMapper, MappingError
from osbatch.ingest.bulk import BulkClient, BulkWriter, WriteGate
from osbatch.ingest.checkpoints import Checkpoints, ChunkProgress, DeadLetters
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.passage_layout import Layout, layout_of
from osbatch.ingest.readers import MAX_LINE_BYTES, ObjectStore, OversizedLine, iter_chunk_lines
from osbatch.ingest.records import RecordError, original, parse_record
from osbatch.models.ingest import Checkpoint, ChunkResult, IngestChunk, MappedDoc, RecordRef
from osbatch.record_paths import BOOKKEEPING_KEY, inference_error


def input_line(record: dict[str, Any]) -> int | None:
    """The record's line in the user's input file, stamped by Prepare and carried through inference."""
    bookkeeping = record.get(BOOKKEEPING_KEY)
    line = bookkeeping.get("line") if isinstance(bookkeeping, dict) else None
    return line if isinstance(line, int) and not isinstance(line, bool) else None


@dataclass(frozen=True)
class IngestTarget:
    """Where a chunk's records go and how: what a pipeline's sink and a `_batch_ingestion` body both give.

    upsert: write `update` + `doc_as_upsert` actions, so several files' fields join into one document.
    passages: for a chunked pipeline, how its records become documents (ingest/passage_layout.py)."""

    mapper: FieldMapper
    index: str
    bulk: BulkConfig
    upsert: bool = False
    passages: Layout | None = None

    @classmethod
    def of_pipeline(cls, config: PipelineConfig) -> IngestTarget:
        sink = config.sink
        mapper = FieldMapper(sink.field_map, sink.ingest_fields, config.source.id_path)
        chunked = config.source.chunking is not None
        return cls(
            mapper, sink.index, sink.bulk, passages=layout_of(sink.layout, sink.mapping) if chunked else None
        )


def derived_id(bucket: str, key: str, offset: int) -> str:
    """A record without an id gets one from where it is: the same line always gets the same id."""
    return hashlib.sha256(f"{bucket}/{key}@{offset}".encode()).hexdigest()[:32]


def ingest_chunk(
    chunk: IngestChunk,
    *,
    target: IngestTarget,
    s3: ObjectStore,
    opensearch: BulkClient,
    dead_letters: DeadLetters,
    progress: ChunkProgress | None = None,
    checkpoint_bytes: int = CHECKPOINT_BYTES,
    gate: WriteGate | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ChunkResult:
    """Ingest the chunk, resuming from its checkpoint when an earlier attempt left one.

    Every checkpoint_bytes of input a checkpoint is marked (ingest/checkpoints.py): once the requests before
    it settle, the segment's dead letters are stored and then the checkpoint saved: the next line's offset
    and the counts so far. A retry starts there, with those counts, so an attempt killed at any moment loses
    and duplicates nothing: lines before the offset are indexed or in stored dead letters, and lines after it
    are read again (indexing by _id overwrites, and the dead-letter segment after the checkpoint is rewritten
    under the same key).

    gate: the domain's writer limit, asked before each bulk request (ingest/bulk.py WriteGate).
    """
    resumed = progress.load() if progress is not None else None
    done = resumed or Checkpoint(offset=chunk.start)
    if done.offset >= chunk.end:
        return ChunkResult(
            chunk=chunk.chunk, lines=done.lines, indexed=done.indexed, dead_lettered=done.dead_lettered
        )
    checkpoints = Checkpoints(done, dead_letters, progress)
    writer = BulkWriter.configured(
        opensearch,
        target.index,
        target.bulk,
        upsert=target.upsert,
        sleep=sleep,
        on_settled=checkpoints.settled,
        gate=gate,
    )
    since_checkpoint = 0
    try:
        for offset, raw in iter_chunk_lines(
            s3, chunk.bucket, chunk.key, done.offset, chunk.end, max_line_bytes=max_line_bytes
        ):
            length = raw.length if isinstance(raw, OversizedLine) else len(raw)
            since_checkpoint += length + 1
            if raw.strip():
                checkpoints.line_read()
                _ingest_line(chunk, offset, raw, target, writer, checkpoints.letters)
            if progress is not None and since_checkpoint >= checkpoint_bytes:
                writer.flush()  # the request under way ends at the checkpoint
                checkpoints.mark(offset + length + 1, writer.requests_cut)
                since_checkpoint = 0
        writer.close()  # its failures were dead-lettered as each request settled
    except BaseException:
        writer.abort()  # no request may run on once the attempt has failed; the retry resumes
        raise
    total = checkpoints.finish()
    return ChunkResult(
        chunk=chunk.chunk,
        lines=total.lines,
        indexed=total.indexed,
        dead_lettered=total.dead_lettered,
        throttled=writer.throttled,
    )


def _ingest_line(
    chunk: IngestChunk,
    offset: int,
    raw: bytes,
    target: IngestTarget,
    writer: BulkWriter,
    dead_letters: DeadLetterWriter,
) -> None:
    try:
        record = parse_record(raw, at_object_start=offset == 0)
    except RecordError as error:
        dead_letters.add(stage="parse", reason=str(error), record=original(raw, error), offset=offset)
        return
    line = input_line(record)
    model_error = inference_error(record)
    if model_error is not None:  # the model failed this record (joined output of Bedrock, OpenAI)
        dead_letters.add(stage="inference", reason=model_error, record=record, line=line, offset=offset)
        return
    try:
        doc = target.mapper.map(record)
        if doc.doc_id is None:
            doc = MappedDoc(derived_id(chunk.bucket, chunk.key, offset), doc.body)
        bookkeeping = record.get(BOOKKEEPING_KEY)
        fields = bookkeeping.get(DOC_FIELDS_KEY) if isinstance(bookkeeping, dict) else None
        if isinstance(fields, dict):  # the fingerprint and origin Prepare stamped (osbatch.incremental)
            doc.body.update(fields)
        docs = [doc] if target.passages is None else target.passages.documents(record, doc)
    except MappingError as error:
        dead_letters.add(stage="map", reason=str(error), record=record, line=line, offset=offset)
        return
    version = None if chunk.version_base is None or line is None else chunk.version_base + line
    writer.add_record(docs, RecordRef(offset, line, raw), version=version)
