"""IngestChunk: one byte range of model output (or of a batch request's file), streamed into the index.

The Distributed Map runs one per chunk of the ingest plan. This step picks what the chunk maps with (the
pipeline's sink, or its file's part of a `_batch_ingestion` request), holds one of the domain's writer
slots while it bulks, asking for its turn before each bulk request (dal/domain_writers.py), and records
the chunk's counts; the reading, mapping,
bulk indexing and checkpointing are ingest/chunk.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osbatch.batch_ingestion.job import batch_target, is_batch_chunk, load_staged
from osbatch.config import PipelineConfig
from osbatch.contracts import INGEST_DEAD_LETTERS, dead_letter_key
from osbatch.dal import ChunkCounts, DomainWriters, JobStore, NoWriterSlot, TableProgress
from osbatch.ingest.chunk import IngestTarget, ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models.ingest import ChunkResult, IngestChunk


@dataclass(frozen=True)
class SinkDomain:
    """The OpenSearch domain a chunk writes to: its client, and the writer limit all its jobs share."""

    opensearch: Any
    writers: DomainWriters


def ingest_planned_chunk(
    chunk: IngestChunk,
    *,
    config: PipelineConfig,
    domain: SinkDomain,
    store: JobStore,
    time_left_seconds: float,
) -> ChunkResult:
    """time_left_seconds: the invocation's remaining time. Waiting for a writer slot may take a third of it
    (then NoWriterSlot); pauses for older writers, once writing, must end within two thirds of it."""
    s3 = store.s3
    target, cited = IngestTarget.of_pipeline(config), chunk.source.uri
    if is_batch_chunk(chunk.source.bucket, chunk.source.key, chunk.job_id, store.output_bucket):
        staged = load_staged(s3, store.output_bucket, chunk.job_id)
        target, cited = batch_target(staged, chunk.file, config), staged.files[chunk.file].cited

    def dead_letters(segment: int) -> DeadLetterWriter:
        key = dead_letter_key(chunk.job_id, INGEST_DEAD_LETTERS, chunk.chunk, segment)
        return DeadLetterWriter(s3, store.dead_letter_bucket, key, job_id=chunk.job_id, source=cited)

    writer = f"{chunk.job_id}/{chunk.chunk}"
    domain.writers.acquire(writer, wait_seconds=time_left_seconds / 3)
    try:
        result = ingest_chunk(
            chunk,
            target=target,
            s3=s3,
            opensearch=domain.opensearch,
            dead_letters=dead_letters,
            progress=TableProgress(store.table, chunk.job_id, chunk.chunk),
            checkpoint_bytes=config.sink.bulk.checkpoint_bytes,
            gate=domain.writers.turns(writer, within_seconds=time_left_seconds * 2 / 3),
        )
    except NoWriterSlot:
        raise  # it paused for older writers: that says nothing new about the domain
    except BaseException:
        domain.writers.throttled()  # a chunk that failed outright tells the limit to back off
        raise
    finally:
        domain.writers.release(writer)
    store.table.put_chunk(
        chunk.job_id,
        chunk.chunk,
        ChunkCounts(result.lines, result.indexed, result.dead_lettered, result.throttled),
    )
    return result
