"""Replay dead letters: re-ingest their records once the user fixed the cause (a mapping, the index, data).

The dead letters of ingest chunks (`dead-letter/<job>/ingest/`, model output lines) are mapped with the
pipeline's current field_map and bulk-written by _id, so a replay run twice leaves the index as one run
does. Records that still fail become dead letters again, in the replay's own object, with the new reason.
Records that never got a model output (Prepare's bad lines, a service's per-record errors, records its output
lacks) cannot be indexed without inference; `input_records` turns them into a JSONL file to fix and upload
again. For a chunked pipeline that holds for its records too: an ingest letter carries the record's passages
with their vectors (written again as they were), and every other letter the record as the user wrote it, so
the upload chunks it afresh (a record refused at stage `chunk` is fixed, or the chunking config changed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from osbatch import jsonlines
from osbatch.field_map import MappingError
from osbatch.ingest.bulk import BulkClient, BulkWriter
from osbatch.ingest.chunk import IngestTarget
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.records import RecordError, parse_record
from osbatch.models.ingest import RecordRef
from osbatch.record_paths import BOOKKEEPING_KEY


@dataclass
class ReplayReport:
    read: int = 0
    indexed: int = 0
    dead_lettered: int = 0  # failed again, with the new reason


def replay(
    entries: Iterable[bytes],
    *,
    target: IngestTarget,
    opensearch: BulkClient,
    dead_letters: DeadLetterWriter,
) -> ReplayReport:
    """entries: the lines of ingest dead-letter objects."""
    report = ReplayReport()
    writer = BulkWriter.configured(opensearch, target.index, target.bulk)
    originals: dict[int, dict[str, Any]] = {}
    for number, raw in enumerate(entries):
        if not raw.strip():
            continue
        report.read += 1
        entry = jsonlines.loads(raw)
        record = entry["record"]
        try:
            if isinstance(record, str):  # a line that never parsed: the user may have fixed it in place
                record = parse_record(record.encode())
            if not isinstance(record, dict):
                raise RecordError("expected a JSON object")
            doc = target.mapper.map(record)
            # A chunked record keeps its passages' vectors in its letter.
            docs = [doc] if target.passages is None else target.passages.documents(record, doc)
        except (RecordError, MappingError) as error:
            line = entry.get("line")
            if isinstance(error, RecordError):
                dead_letters.add(stage="parse", reason=str(error), record=entry["record"], line=line)
            else:
                dead_letters.add(stage="map", reason=str(error), record=entry["record"], line=line)
            continue
        if doc.doc_id is None:
            # A dead letter keeps no derived id; without a mapped one a replay could duplicate the document.
            dead_letters.add(stage="map", reason="no _id to replay by", record=record, line=entry.get("line"))
            continue
        originals[number] = entry
        writer.add_record(docs, RecordRef(number, entry.get("line"), raw))
    for failure in writer.close():
        entry = originals[failure.ref.offset]
        dead_letters.add(stage="index", reason=failure.reason, record=entry["record"], line=entry.get("line"))
    report.indexed = writer.indexed
    report.dead_lettered = dead_letters.close()
    return report


def needs_inference(entry: dict[str, Any]) -> bool:
    """A record that never got a model output: only another upload, not a replay, can index it."""
    return entry.get("stage") == "inference" and not file_level(entry)


def file_level(entry: dict[str, Any]) -> bool:
    """A letter that stands for many records of a file (a failed job or remote job), not for one record."""
    record = entry.get("record")
    return isinstance(record, dict) and "file" in record and isinstance(record.get("records"), int)


def input_records(entries: Iterable[bytes]) -> Iterable[bytes]:
    """Dead letters of records that never got a model output as input lines again: the record as the user
    wrote it (osbatch's `_osbatch` bookkeeping removed), or the raw line as it was."""
    for raw in entries:
        if raw.strip():
            record = jsonlines.loads(raw)["record"]
            if isinstance(record, dict):
                record = {key: value for key, value in record.items() if key != BOOKKEEPING_KEY}
            yield (record.encode() if isinstance(record, str) else jsonlines.dumps(record)) + b"\n"
