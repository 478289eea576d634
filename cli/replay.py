"""`osbatch replay <job id | s3://bucket/dead-letter object>`: re-ingest dead letters after a fix.

A job id replays every ingest dead-letter object of the job; an S3 URI replays that object. Records that
fail again go to `dead-letter/<job>/replay/`, one object per replayed object (so a second replay replaces
the first one's). Prepare's dead letters, input lines that never reached the model, are written to a local
JSONL file to fix and `osbatch submit` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from osbatch.config import PipelineConfig
from osbatch.contracts import dead_letter_prefix
from osbatch.ingest.chunk import IngestTarget
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.replay import ReplayReport, input_records, replay
from osbatch.s3uri import split_s3_uri

INGEST_DIR = "ingest/"
PREPARE_DIR = "prepare/"
REPLAY_DIR = "replay/"


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
) -> ReplayReport:
    """what: the job id, or one dead-letter object's s3:// URI (of that job)."""
    prefix = dead_letter_prefix(job_id)
    if what.startswith("s3://"):
        bucket, key = split_s3_uri(what)
        ingest, prepare = ([key], []) if f"/{PREPARE_DIR}" not in key else ([], [key])
    else:
        ingest = list(_keys(s3, bucket, prefix + INGEST_DIR))
        prepare = list(_keys(s3, bucket, prefix + PREPARE_DIR))
    total = ReplayReport()
    target = IngestTarget.of_pipeline(config)
    for key in ingest:
        name = key.rsplit("/", 1)[-1]
        dead = DeadLetterWriter(
            s3, bucket, f"{prefix}{REPLAY_DIR}{name}", job_id=job_id, source=f"s3://{bucket}/{key}"
        )
        report = replay(_lines(s3, bucket, key), target=target, opensearch=opensearch, dead_letters=dead)
        say(f"  {key}: {report.read} read, {report.indexed} indexed, {report.dead_lettered} failed again")
        total.read += report.read
        total.indexed += report.indexed
        total.dead_lettered += report.dead_lettered
    resubmit = 0
    if prepare:
        resubmit_dir.mkdir(parents=True, exist_ok=True)
        path = resubmit_dir / f"{job_id}-resubmit.jsonl"
        with path.open("wb") as out:
            for key in prepare:
                for line in input_records(_lines(s3, bucket, key)):
                    out.write(line)
                    resubmit += 1
        say(f"  {resubmit} input records never reached the model: fix them in {path} and `osbatch submit` it")
    again = f"; failures in s3://{bucket}/{prefix}{REPLAY_DIR}" if total.dead_lettered else ""
    say(f"replayed {total.read}: {total.indexed} indexed, {total.dead_lettered} failed again{again}")
    return total
