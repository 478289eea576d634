"""Prepare's fingerprint check: records whose embedded input is unchanged since osbatch indexed them skip
the model; their other fields are still updated.

Design (docs/cost.md, "Re-uploads pay only for what changed"): the fingerprint (fingerprint.py) is stored in
each document osbatch writes, and read back here in bulk with `_mget` (OpenSearch, "Multi-get documents":
https://docs.opensearch.org/latest/api-reference/document-apis/multi-get/), only that field
(`_source_includes`), a thousand ids a request. The index is the truth: a document deleted, or written by
something else (no fingerprint), is embedded again, and the report says how many had no fingerprint.

An unchanged record is written at once as a partial `update` (no vector: the document keeps its own) of the
fields field_map takes from the record rather than from the model output, and its source object; where
none of them changed, OpenSearch makes it a no-op rather than re-indexing the document. A
changed or new record goes on to the model with its fingerprint in its bookkeeping, which ingest copies into
the document (ingest/chunk.py). A failed check (the cluster refusing the `_mget`) sends its records to the
model: it costs inference, never a record.

Memory: one batch of records (MGET_BATCH) at a time, and the bulk requests in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensearchpy.exceptions import TransportError

from osbatch import jsonlines
from osbatch.config import PipelineConfig
from osbatch.contracts import (
    CONFIG_FIELD,
    DOC_FIELDS_KEY,
    FINGERPRINT_FIELD,
    ID_FIELD,
    JOB_FIELD,
    SOURCE_FIELD,
)
from osbatch.field_map import FieldMapper, MappingError, strip_source_prefix
from osbatch.incremental.fingerprint import INCREMENTAL_OFF, config_fingerprint, record_fingerprint
from osbatch.ingest.bulk import BulkWriter
from osbatch.ingest.records import require_text
from osbatch.models.ingest import MappedDoc, RecordRef
from osbatch.planning.scan import EstimatedTokens
from osbatch.record_paths import BOOKKEEPING_KEY, RecordPath

logger = logging.getLogger(__name__)

MGET_BATCH = 1000  # ids per _mget: about 60 KB of request and 100 KB of answer for fingerprint-only sources
# The mapping of osbatch's own fields: the fingerprint is only ever read back from _source, never searched.
DOC_FIELDS_MAPPING = {
    "properties": {
        FINGERPRINT_FIELD: {"type": "keyword", "index": False, "doc_values": False},
        CONFIG_FIELD: {"type": "keyword"},
        SOURCE_FIELD: {"type": "keyword"},
        JOB_FIELD: {"type": "keyword"},
        ID_FIELD: {"type": "keyword"},
    }
}

Send = Callable[[dict[str, Any], int, str, dict[str, str]], None]  # record, line, text, its document fields
DeadLetter = Callable[[int, dict[str, Any], str], None]  # line, record, reason


@dataclass
class IncrementalCounts:
    """What the check found; `unchanged` + `update_failed` records never reached the model."""

    enabled: bool = True
    why_off: str | None = None
    checked: int = 0
    unchanged: int = 0
    update_failed: int = 0  # unchanged, but their field update failed: dead-lettered
    without_fingerprint: int = 0  # found in the index with no fingerprint: written by something else
    check_failed: int = 0  # sent to the model because the _mget failed
    inputs_saved: int = 0
    tokens_saved: int = 0  # estimated (EstimatedTokens: UTF-8 bytes / 4)
    lookups: int = 0  # _mget requests
    stale: int = 0  # documents an earlier version of the source object wrote that this one lacks (sync.py)
    reasons: list[str] = field(default_factory=list)

    def as_report(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "why_off": self.why_off,
            "checked": self.checked,
            "unchanged": self.unchanged,
            "update_failed": self.update_failed,
            "without_fingerprint": self.without_fingerprint,
            "check_failed": self.check_failed,
            "inputs_saved": self.inputs_saved,
            "tokens_saved": self.tokens_saved,
            "tokens_saved_counted_by": EstimatedTokens.how,
            "lookups": self.lookups,
            "stale": self.stale,
            "notes": self.reasons,
        }


def non_embedded_mapper(config: PipelineConfig, result_key: str) -> FieldMapper:
    """field_map without the entries that read the model output (under the backend's result_key): what an
    unchanged record's document is updated with."""
    sink = config.sink
    kept = {
        name: paths
        for name, paths in sink.field_map.items()
        if not any(_reads_result(path, result_key) for path in ([paths] if isinstance(paths, str) else paths))
    }
    return FieldMapper(kept, sink.ingest_fields, config.source.id_path)


def _reads_result(expression: str, result_key: str) -> bool:
    path = strip_source_prefix(expression, "field_map")
    for head in (f"$.{result_key}", f"$['{result_key}']", f'$["{result_key}"]'):
        if path == head or path.startswith((f"{head}.", f"{head}[")):
            return True
    return False


def stamp(line: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The line with the document fields in its bookkeeping (where it has any), for ingest to copy."""
    bookkeeping = line.get(BOOKKEEPING_KEY)
    if isinstance(bookkeeping, dict):
        line[BOOKKEEPING_KEY] = {**bookkeeping, DOC_FIELDS_KEY: fields}
    return line


class FingerprintCheck:
    """offer() each valid record; changed ones reach `send`, unchanged ones are updated in the index."""

    def __init__(
        self,
        client: Any,
        config: PipelineConfig,
        *,
        result_key: str,
        job_id: str,
        source_uri: str,
        send: Send,
        dead_letter: DeadLetter,
        inputs: Callable[[str], int] = lambda _text: 1,
        batch: int = MGET_BATCH,
    ) -> None:
        self._client, self._index = client, config.sink.index
        self._print = config_fingerprint(config)
        self._job_id, self._source_uri = job_id, source_uri
        self._send, self._dead_letter, self._inputs = send, dead_letter, inputs
        self._batch_size = batch
        self._pending: list[tuple[str, dict[str, Any], int, str, str]] = []
        self._mapper = non_embedded_mapper(config, result_key)
        self._tokens = EstimatedTokens()
        self._text_path, self._text_expression = RecordPath(config.source.text_path), config.source.text_path
        self._writer = BulkWriter.configured(client, self._index, config.sink.bulk, partial=True)
        self.counts = IncrementalCounts()
        client.indices.put_mapping(index=self._index, body=DOC_FIELDS_MAPPING)

    def fields(self, fingerprint: str, doc_id: str) -> dict[str, str]:
        return {
            FINGERPRINT_FIELD: fingerprint,
            CONFIG_FIELD: self._print,
            SOURCE_FIELD: self._source_uri,
            JOB_FIELD: self._job_id,
            ID_FIELD: doc_id,
        }

    def offer(self, doc_id: str, record: dict[str, Any], line: int, text: str) -> None:
        fingerprint = record_fingerprint(self._print, text)
        self._pending.append((doc_id, record, line, text, fingerprint))
        if len(self._pending) >= self._batch_size:
            self._check()

    def close(self) -> IncrementalCounts:
        self._check()
        for failure in self._writer.close():  # rare: the saving it had counted is taken back
            record = jsonlines.loads(failure.ref.raw)
            text = require_text(record, self._text_path, self._text_expression)
            self.counts.unchanged -= 1
            self.counts.inputs_saved -= self._inputs(text)
            self.counts.tokens_saved -= self._tokens.count(text)
            self.counts.update_failed += 1
            self._dead_letter(
                failure.ref.offset, record, f"updating its unchanged document: {failure.reason}"
            )
        if self.counts.without_fingerprint:
            self.counts.reasons.append(
                f"{self.counts.without_fingerprint} documents of index {self._index} had no osbatch "
                "fingerprint (written by something else, or before incremental re-embedding): embedded again"
            )
        if self.counts.check_failed:
            self.counts.reasons.append(
                f"{self.counts.check_failed} records were sent to the model because the fingerprint "
                "lookup (_mget) failed"
            )
        return self.counts

    def _check(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        self.counts.checked += len(batch)
        stored = self._stored([doc_id for doc_id, *_ in batch])
        for doc_id, record, line, text, fingerprint in batch:
            if stored is not None and stored.get(doc_id) == fingerprint:
                self._keep(doc_id, record, line, text)
            else:
                self._send(record, line, text, self.fields(fingerprint, doc_id))

    def _stored(self, ids: list[str]) -> dict[str, str | None] | None:
        """id -> its document's fingerprint (None: found without one), for the ids found; None if the
        lookup failed."""
        self.counts.lookups += 1
        try:
            response = self._client.mget(
                index=self._index, body={"ids": ids}, params={"_source_includes": FINGERPRINT_FIELD}
            )
        except TransportError as error:
            logger.warning("fingerprint lookup failed", extra={"status": error.status_code})
            self.counts.check_failed += len(ids)
            return None
        found: dict[str, str | None] = {}
        for doc in response.get("docs", []):
            if not doc.get("found"):
                continue
            value = (doc.get("_source") or {}).get(FINGERPRINT_FIELD)
            found[str(doc["_id"])] = value if isinstance(value, str) else None
            self.counts.without_fingerprint += not isinstance(value, str)
        return found

    def _keep(self, doc_id: str, record: dict[str, Any], line: int, text: str) -> None:
        try:
            body = self._mapper.map(record).body
        except MappingError as error:
            # The model output would not change this; ingest would dead-letter it at stage map all the same.
            self._dead_letter(line, record, str(error))
            self.counts.update_failed += 1
            return
        # Only what the record itself gives, and its source: a document whose fields did not change either is
        # then a no-op for OpenSearch (the update API's detect_noop, on by default), not a re-index of its
        # vectors. Its JOB_FIELD stays the job that embedded it.
        body[SOURCE_FIELD] = self._source_uri
        self.counts.unchanged += 1
        self.counts.inputs_saved += self._inputs(text)
        self.counts.tokens_saved += self._tokens.count(text)
        # The line stands in for the offset: it is what failures are matched back by.
        self._writer.add(MappedDoc(doc_id, body), RecordRef(line, line, jsonlines.dump_line(record)))


def counts_when_off() -> IncrementalCounts:
    """The report's counts of a pipeline with source.incremental false."""
    return IncrementalCounts(enabled=False, why_off=INCREMENTAL_OFF)
