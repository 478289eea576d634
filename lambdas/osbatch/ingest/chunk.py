"""Ingest one chunk: read its lines, parse, map, bulk index, and dead-letter whatever fails at any stage.

Every non-blank line the chunk owns ends up indexed or dead-lettered (ChunkResult checks the sum), so a job's
records_in = indexed + dead_lettered holds chunk by chunk. Blank lines are not records and are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from osbatch.config import PipelineConfig
from osbatch.ingest.bulk import BulkClient, BulkWriter
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.field_map import FieldMapper, MappingError
from osbatch.ingest.models import ChunkResult, IngestChunk, RecordRef
from osbatch.ingest.readers import iter_chunk_lines
from osbatch.ingest.record_paths import BOOKKEEPING_KEY
from osbatch.records import RecordError, original, parse_record

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def input_line(record: dict[str, Any]) -> int | None:
    """The record's line in the user's input file, stamped by Prepare and carried through inference."""
    bookkeeping = record.get(BOOKKEEPING_KEY)
    line = bookkeeping.get("line") if isinstance(bookkeeping, dict) else None
    return line if isinstance(line, int) and not isinstance(line, bool) else None


def ingest_chunk(
    chunk: IngestChunk,
    *,
    config: PipelineConfig,
    s3: S3Client,
    opensearch: BulkClient,
    dead_letters: DeadLetterWriter,
    sleep: Callable[[float], None] = time.sleep,
) -> ChunkResult:
    """Closes dead_letters before returning, so a result is only reported once its dead letters are stored.

    dead_letters carries the job id and the source it reports; it should be empty when passed in.
    """
    sink = config.sink
    mapper = FieldMapper(sink.field_map, sink.ingest_fields, config.source.id_path)
    writer = BulkWriter(
        opensearch,
        sink.index,
        max_bytes=sink.bulk.max_bytes,
        max_request_bytes=sink.bulk.max_request_bytes,
        concurrency=sink.bulk.concurrency,
        max_retries=sink.bulk.max_retries,
        initial_backoff=sink.bulk.initial_backoff_seconds,
        max_backoff=sink.bulk.max_backoff_seconds,
        sleep=sleep,
    )

    lines = 0
    for offset, raw in iter_chunk_lines(s3, chunk.bucket, chunk.key, chunk.start, chunk.end):
        if not raw.strip():
            continue
        lines += 1
        try:
            record = parse_record(raw, at_object_start=offset == 0)
        except RecordError as error:
            dead_letters.add(stage="parse", reason=str(error), record=original(raw, error), offset=offset)
            continue
        line = input_line(record)
        try:
            doc = mapper.map(record)
        except MappingError as error:
            dead_letters.add(stage="map", reason=str(error), record=record, line=line, offset=offset)
            continue
        writer.add(doc, RecordRef(offset, line, raw))

    for failure in writer.close():
        ref = failure.ref
        record = parse_record(ref.raw, at_object_start=ref.offset == 0)
        dead_letters.add(
            stage="index", reason=failure.reason, record=record, line=ref.line, offset=ref.offset
        )
    dead_lettered = dead_letters.close()
    return ChunkResult(chunk=chunk.chunk, lines=lines, indexed=writer.indexed, dead_lettered=dead_lettered)
