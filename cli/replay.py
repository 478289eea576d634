"""`osbatch replay <job id | s3://bucket/dead-letter object>`: re-ingest dead letters after a fix.

A job id replays every dead-letter object of the job; an S3 URI replays that object. What a letter holds
decides what a replay can do with it:
- a model output line that failed to parse, map or index (`ingest/`) is mapped with the pipeline's current
  field_map and written by _id; records that fail again go to `dead-letter/<job>/replay/`, one object per
  replayed object (so a second replay replaces the first one's);
- a record that never got a model output (Prepare's bad lines in `parse/`, a per-record error of the
  service, a record the output lacks) cannot be indexed without inference: it is written, as the user wrote
  it, to a local JSONL file to fix and `osbatch submit` again;
- a file-level letter (a remote job or a whole job that failed) stands for records that are still in the
  uploaded file: the replay names the file to upload again (safe: documents are written by _id).

A job that failed because its node was down may have left the index as its load set it (no refresh, no
replicas; search/bulk_load.py): the replay restores it first, so what it indexes is searchable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from opensearchpy.exceptions import TransportError

from osbatch import jsonlines
from osbatch.config import PipelineConfig
from osbatch.contracts import (
    INDEX_DEAD_LETTERS,
    INFERENCE_DEAD_LETTERS,
    INGEST_DEAD_LETTERS,
    PREPARE_DEAD_LETTERS,
    REPLAY_DEAD_LETTERS,
    dead_letter_prefix,
)
from osbatch.ingest.chunk import IngestTarget
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.replay import ReplayReport, file_level, input_records, needs_inference, replay
from osbatch.s3uri import split_s3_uri
from osbatch.search.bulk_load import restore_owed

# The folders a job id replays, in this order (a replay's own failures are replayed by naming the object).
FOLDERS = (INGEST_DEAD_LETTERS, PREPARE_DEAD_LETTERS, INFERENCE_DEAD_LETTERS, INDEX_DEAD_LETTERS)
# The folders whose letters never hold a model output line, so nothing in them can be indexed again.
OUTPUT_LESS = (PREPARE_DEAD_LETTERS, INFERENCE_DEAD_LETTERS, INDEX_DEAD_LETTERS)


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _lines(s3: Any, bucket: str, key: str) -> Iterator[bytes]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from body.iter_lines()
    finally:
        body.close()


def _sorted_out(entries: Iterator[bytes], resubmit: _Resubmit, uploads: Counter[str]) -> Iterator[bytes]:
    """The letters a replay can index; the others go to the resubmit file or the uploads as they pass."""
    for raw in entries:
        if not raw.strip():
            continue
        entry = jsonlines.loads(raw)
        if file_level(entry):
            uploads[entry["record"]["file"]] += entry["record"]["records"]
        elif needs_inference(entry):
            resubmit.add(raw)
        else:
            yield raw


class _Resubmit:
    """The local file of records to fix and upload again, created with its first record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._out: BinaryIO | None = None

    def add(self, raw: bytes) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.path.open("wb")
        self._out.writelines(input_records([raw]))
        self.count += 1

    def extend(self, entries: Iterator[bytes]) -> None:
        for raw in entries:
            self.add(raw)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def replay_job(
    what: str,
    *,
    job_id: str,
    config: PipelineConfig,
    s3: Any,
    bucket: str,
    opensearch: Any,
    resubmit_dir: Path,
    say: Any = print,
    jobs: Any = None,
) -> ReplayReport:
    """what: the job id, or one dead-letter object's s3:// URI (of that job). jobs: the stack's job table,
    where an index restore a failed job owes is recorded (None: not looked for)."""
    if jobs is not None:
        _restore_owed(opensearch, jobs, config.sink.index, say)
    prefix = dead_letter_prefix(job_id)
    if what.startswith("s3://"):
        bucket, key = split_s3_uri(what)
        keys = [key]
    else:
        keys = [key for folder in FOLDERS for key in _keys(s3, bucket, prefix + folder)]
    total = ReplayReport()
    target = IngestTarget.of_pipeline(config)
    resubmit = _Resubmit(resubmit_dir / f"{job_id}-resubmit.jsonl")
    uploads: Counter[str] = Counter()  # file to upload again -> the records its file-level letters stand for
    try:
        for key in keys:
            lines = _sorted_out(_lines(s3, bucket, key), resubmit, uploads)
            if key.startswith(tuple(prefix + folder for folder in OUTPUT_LESS)):
                resubmit.extend(lines)  # Prepare's bad lines: no model output line to index
                continue
            name = key.rsplit("/", 1)[-1]
            dead = DeadLetterWriter(
                s3,
                bucket,
                f"{prefix}{REPLAY_DEAD_LETTERS}{name}",
                job_id=job_id,
                source=f"s3://{bucket}/{key}",
            )
            report = replay(lines, target=target, opensearch=opensearch, dead_letters=dead)
            say(f"  {key}: {report.read} read, {report.indexed} indexed, {report.dead_lettered} failed again")
            total.read += report.read
            total.indexed += report.indexed
            total.dead_lettered += report.dead_lettered
    finally:
        resubmit.close()
    if resubmit.count:
        fix = f"fix them in {resubmit.path} and `osbatch submit` it"
        say(f"  {resubmit.count} records never got a model output: {fix}")
    for file, records in uploads.items():
        say(f"  {records} records of {file} were not indexed because their job failed: upload {file} again")
    again = f"; failures in s3://{bucket}/{prefix}{REPLAY_DEAD_LETTERS}" if total.dead_lettered else ""
    say(f"replayed {total.read}: {total.indexed} indexed, {total.dead_lettered} failed again{again}")
    return total


def _restore_owed(opensearch: Any, jobs: Any, index: str, say: Any) -> None:
    """A replay is worth running without it: the next job into the index restores the settings too."""
    try:
        restored = restore_owed(opensearch, jobs, index)
    except TransportError as error:  # the node down again, or no right to change settings
        say(f"  {index}: could not restore the settings a failed job's load left ({type(error).__name__})")
        return
    if restored:
        say(f"  {index}: refresh_interval and number_of_replicas restored (a failed job's load left them)")
