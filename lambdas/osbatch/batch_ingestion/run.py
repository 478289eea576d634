"""Run a `_batch_ingestion` request: every file cut into byte-range chunks, each chunk through ingest_chunk.

The engine is the pipeline's (chunking, parsing, mapping, bulk writer, dead letters); only the targets differ
(batch_request.py). Files are read through an ObjectStore and dead letters written through another, so S3,
local files and downloaded OpenAI files all go the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from osbatch.batch_ingestion.request import BatchIngestRequest
from osbatch.config import BulkConfig
from osbatch.ingest.bulk import BulkClient
from osbatch.ingest.chunk import IngestTarget, ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import ObjectStore, plan_chunks
from osbatch.models import SourceObject
from osbatch.models.ingest import ChunkResult, IngestChunk

DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024
PIPELINE = "batch-ingest"  # what dead letters and chunks name as their pipeline


@dataclass(frozen=True)
class InputFile:
    """One data_source entry, where it can be read: bucket and key of the ObjectStore, its size, and the
    name dead letters cite (the URI or file id the request gave)."""

    bucket: str
    key: str
    size: int
    cited: str


@dataclass(frozen=True)
class DeadLetterStore:
    store: ObjectStore
    bucket: str
    prefix: str  # e.g. "dead-letter/<run id>/"

    def location(self) -> str:
        return f"{self.bucket.rstrip('/')}/{self.prefix}" if self.bucket else self.prefix


@dataclass
class BatchReport:
    run_id: str
    index: str
    files: int
    chunks: int = 0
    records_in: int = 0
    indexed: int = 0
    dead_lettered: int = 0
    dead_letters: str = ""


Progress = Callable[[BatchReport, ChunkResult], None]


def run_batch_ingest(
    request: BatchIngestRequest,
    files: list[InputFile],
    *,
    run_id: str,
    objects: ObjectStore,
    opensearch: BulkClient,
    dead_letters: DeadLetterStore,
    bulk: BulkConfig,
    progress: Progress = lambda report, result: None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    order: Sequence[int] | None = None,
) -> BatchReport:
    """order: the positions of `files` in the order they are read; any order gives the same documents."""
    report = BatchReport(run_id, request.index_name, len(files), dead_letters=dead_letters.location())
    number = 0
    for position in order if order is not None else range(len(files)):
        file = files[position]
        target = IngestTarget(request.mapper(position), request.index_name, bulk, upsert=request.joins)
        source = SourceObject(bucket=file.bucket or "file", key=file.key)
        for planned in plan_chunks([(file.key, file.size)], chunk_bytes):
            chunk = IngestChunk(
                job_id=run_id,
                pipeline=PIPELINE,
                source=source,
                chunk=number,
                bucket=file.bucket or "file",
                key=file.key,
                start=planned["start"],
                end=planned["end"],
            )

            def writer(segment: int, chunk_number: int = number, cited: str = file.cited) -> DeadLetterWriter:
                suffix = f".{segment:04d}" if segment else ""
                key = f"{dead_letters.prefix}{chunk_number:05d}{suffix}.jsonl"
                return DeadLetterWriter(
                    dead_letters.store, dead_letters.bucket, key, job_id=run_id, source=cited
                )

            result = ingest_chunk(
                chunk,
                target=target,
                s3=_Rebucketed(objects, file.bucket),
                opensearch=opensearch,
                dead_letters=writer,
            )
            number += 1
            report.chunks += 1
            report.records_in += result.lines
            report.indexed += result.indexed
            report.dead_lettered += result.dead_lettered
            progress(report, result)
    return report


class _Rebucketed:
    """The chunk names a placeholder bucket for local files (a SourceObject needs one); reads use the real."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store, self._bucket = store, bucket

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> object:
        return self._store.get_object(Bucket=self._bucket, Key=Key, Range=Range)

    def upload_fileobj(
        self, Fileobj: object, Bucket: str, Key: str, ExtraArgs: object = None, *, Config: object = None
    ) -> None:
        raise NotImplementedError("input files are read, never written")

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        raise NotImplementedError("input files are read, never written")
