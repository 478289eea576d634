"""Join a service's output lines back onto the source records Prepare kept (backends with joins_source).

Bedrock and OpenAI output lines carry a record id and the model output, not the record (see
backends/bedrock.py for the id design). For each output object this writes a joined object in which every
line is `{**source record, "_osbatch": {"line": n}, <result_key>: output}`: the shape SageMaker's
JoinSource=Input produces, so ingest and field_map treat every backend alike. A failed record becomes
`{**source record, "_osbatch": {"line": n, "error": {code, message}}}`, which ingest dead-letters with stage
`inference`. An output line whose id matches no record sent is kept as such an error too, so it is counted,
never dropped. Records the service returned nothing for (a silent drop, found by diffing the line numbers
sent against those answered) become dead letters at stage `inference`, reason MISSING_FROM_OUTPUT, one
object per output object, so they are counted and can be uploaded again.

Memory: one part's source records (bounded by the backend's per-file limits) as raw lines, plus one
output line at a time.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osbatch import jsonlines
from osbatch.backends.base import BatchBackend, OutputObject
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import object_lines
from osbatch.record_paths import BOOKKEEPING_KEY, ERROR_KEY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SPOOL_BYTES = 64 * 1024 * 1024
MISSING_FROM_OUTPUT = "missing from model output: the service returned no result and no error for it"


def source_name(output_key: str) -> str:
    """`…/part-00003.jsonl.out` -> `part-00003.jsonl`: the input part an output object answers."""
    return posixpath.basename(output_key).removesuffix(".out")


@dataclass(frozen=True)
class Joined:
    outputs: list[OutputObject]  # the joined objects, for the ingest plan
    missing: int  # records sent that no output line answered, dead-lettered here
    input_tokens: int | None = (
        None  # the input tokens the output lines report (OpenAI's usage); None: none do
    )


# Joins one output object onto its part's source records (line -> raw record) into s3://bucket/key; returns
# the joined object's size and the lines some output line answered. _join_one for whole records,
# steps/support/passage_join.py for chunked ones.
PartJoiner = Callable[
    ["BatchBackend", "S3Client", OutputObject, dict[int, bytes], str, str, "Usage"], tuple[int, set[int]]
]


def join_outputs(
    backend: BatchBackend,
    s3: S3Client,
    outputs: list[OutputObject],
    *,
    source_bucket: str,
    source_prefix: str,
    joined_prefix: str,
    dead_letters: Callable[[int], DeadLetterWriter],
    join_part: PartJoiner | None = None,
) -> Joined:
    """dead_letters: output object number -> the writer of the records its output lacks."""
    joined, missing, usage = [], 0, Usage()
    join_one = join_part or _join_one
    for number, output in enumerate(outputs):
        records = _source_records(s3, source_bucket, f"{source_prefix}{source_name(output.key)}")
        key = f"{joined_prefix}{posixpath.basename(output.key)}"
        size, answered = join_one(backend, s3, output, records, source_bucket, key, usage)
        joined.append(OutputObject(source_bucket, key, size))
        letters = dead_letters(number)
        for line in sorted(records.keys() - answered):
            record = jsonlines.loads(records[line])
            record.pop(BOOKKEEPING_KEY, None)  # the record as the user wrote it
            letters.add(stage="inference", reason=MISSING_FROM_OUTPUT, record=record, line=line)
        missing += letters.close()
    return Joined(joined, missing, usage.tokens)


@dataclass
class Usage:
    tokens: int | None = None

    def add(self, tokens: int | None) -> None:
        if tokens is not None:
            self.tokens = (self.tokens or 0) + tokens


def _source_records(s3: S3Client, bucket: str, key: str) -> dict[int, bytes]:
    """line number -> the record's raw JSON line, for one part."""
    records: dict[int, bytes] = {}
    for _, raw in object_lines(s3, bucket, key):
        if raw.strip():
            records[int(jsonlines.loads(raw)[BOOKKEEPING_KEY]["line"])] = raw
    return records


def _join_one(
    backend: BatchBackend,
    s3: S3Client,
    output: OutputObject,
    records: dict[int, bytes],
    bucket: str,
    key: str,
    usage: Usage,
) -> tuple[int, set[int]]:
    """The joined object's size, and the lines of `records` some output line answered."""
    size, answered = 0, set()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for _, raw in object_lines(s3, output.bucket, output.key):
            if not raw.strip():
                continue
            record = _joined(backend, raw, records, usage)
            line = record.get(BOOKKEEPING_KEY, {}).get("line")
            if isinstance(line, int):
                answered.add(line)
            data = jsonlines.dump_line(record)
            spool.write(data)
            size += len(data)
        spool.seek(0)
        s3.upload_fileobj(spool, bucket, key)
    return size, answered


def _joined(backend: BatchBackend, raw: bytes, records: dict[int, bytes], usage: Usage) -> dict[str, Any]:
    try:
        parsed = backend.parse_output(jsonlines.loads(raw))
    except ValueError as error:
        return _unmatched(raw, f"the output line is not valid JSON: {error}")
    usage.add(parsed.input_tokens)
    source = records.get(parsed.line) if parsed.line is not None else None
    if source is None:
        return _unmatched(raw, "the output line's record id matches no record that was sent")
    record: dict[str, Any] = jsonlines.loads(source)
    if parsed.error is not None:
        record[BOOKKEEPING_KEY] = {**record[BOOKKEEPING_KEY], ERROR_KEY: parsed.error}
        return record
    record[backend.result_key] = parsed.result
    return record


def unmatched(raw: bytes, message: str) -> dict[str, Any]:
    """An output line that answers no record sent: kept as an error record, so it is counted."""
    return _unmatched(raw, message)


def _unmatched(raw: bytes, message: str) -> dict[str, Any]:
    return {
        BOOKKEEPING_KEY: {ERROR_KEY: {"code": "unmatched", "message": message}},
        "output": raw.decode("utf-8", errors="replace"),
    }
