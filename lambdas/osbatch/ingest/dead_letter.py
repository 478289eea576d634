"""Records that could not be indexed, written as one JSONL object per chunk.

The key is deterministic, so a retried chunk replaces its own dead letters rather than adding to them; when
the retry has none, the stale object is deleted so dead letters always match the chunk's recorded counts.
"""

from __future__ import annotations

from tempfile import SpooledTemporaryFile
from typing import Any, Literal

from boto3.s3.transfer import TransferConfig

from osbatch import jsonlines
from osbatch.ingest.readers import ObjectStore

# chunk: the record's text gives no passage, or more than max_chunk_limit (osbatch.chunking).
Stage = Literal["parse", "chunk", "map", "index", "inference"]
# Past this, the spool moves to /tmp: a chunk whose every record fails must not exhaust memory. Small, because
# a chunk's peak memory is its bulk requests' plus this: at 8 MiB, one failed request's 16,134 letters (64-dim
# vectors) grew the process by 26 MB before the upload (docs/reliability.md, Load).
SPOOL_MEMORY_BYTES = 1024 * 1024
# s3transfer reads each part of a file object into memory, up to 10 parts of 8 MiB at once with its threads
# (boto3 "S3 customization reference", TransferConfig:
# docs.aws.amazon.com/boto3/latest/reference/customizations/s3.html): 18 MB more for 13.5 MiB of letters.
# Without threads one part is read, sent and freed before the next.
ONE_PART_AT_A_TIME = TransferConfig(use_threads=False)


class DeadLetterWriter:
    """One writer per job step or chunk: job_id and source are the same for every record it holds."""

    def __init__(self, s3: ObjectStore, bucket: str, key: str, *, job_id: str, source: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self.job_id = job_id
        self.source = source
        # Open for the writer's lifetime, closed by close(): no single block to scope a `with` to.
        self._spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self.count = 0
        self._closed = False

    def add(
        self, *, stage: Stage, reason: str, record: Any, line: int | None = None, offset: int | None = None
    ) -> None:
        """record: the parsed original when there is one; raw bytes are decoded lossily so any line fits."""
        if self._closed:
            raise ValueError(f"s3://{self.bucket}/{self.key}: dead letters added after close() would be lost")
        if isinstance(record, bytes):
            record = record.decode("utf-8", errors="replace")
        entry = {
            "job_id": self.job_id,
            "source": self.source,
            "line": line,
            # The byte offset in the object being read locates a line that never parsed (no line number).
            "offset": offset,
            "stage": stage,
            "reason": reason,
            "record": record,
        }
        self._spool.write(jsonlines.dump_line(entry))
        self.count += 1

    def close(self) -> int:
        """Upload (or clear) the dead letters; how many there are. Safe to call twice."""
        if self._closed:
            return self.count
        if self.count:
            self._spool.seek(0)
            self._s3.upload_fileobj(
                self._spool,
                self.bucket,
                self.key,
                ExtraArgs={"ContentType": "application/x-ndjson"},
                Config=ONE_PART_AT_A_TIME,
            )
        else:
            self._s3.delete_object(Bucket=self.bucket, Key=self.key)
        self._spool.close()
        self._closed = True
        return self.count
