"""ML Commons `_batch_ingestion` field mapping: one source record -> one OpenSearch document.

Semantics follow ML Commons (OpenSearch, "Asynchronous batch ingestion":
https://docs.opensearch.org/latest/ml-commons-plugin/remote-models/async-batch-ingestion/)
with two deliberate differences:
- a path missing from a record raises MappingError for that record only; osbatch dead-letters it, where
  ML Commons fails the whole task;
- without an `_id` mapping the id comes from the pipeline's source.id_path, so a re-run overwrites documents
  instead of duplicating them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from osbatch.models.ingest import MappedDoc
from osbatch.record_paths import BOOKKEEPING_KEY, MISSING, RecordPath

ID_KEY = "_id"
_SOURCE_PREFIX = re.compile(r"^source\[(\d+)\]\.(?=\$)")
# Fields OpenSearch owns; a body field with one of these names fails every document at index time.
_METADATA_FIELDS = frozenset(
    {"_id", "_index", "_source", "_routing", "_field_names", "_ignored", "_seq_no", "_primary_term"}
    | {"_version"}
)


class MappingError(ValueError):
    """One record cannot be mapped. The message names the field and the path, never the record's data."""


def strip_source_prefix(expression: str, where: str) -> str:
    """`source[0].$.x` -> `$.x`. Any other file index is a multi-file join, which this mapper cannot do."""
    match = _SOURCE_PREFIX.match(expression)
    if match is None:
        return expression
    if match.group(1) != "0":
        raise ValueError(
            f"{where}: '{expression}' reads source[{match.group(1)}], another input file; "
            "mapping fields from several files needs `osbatch batch-ingest`"
        )
    return expression[match.end() :]


@dataclass(frozen=True, slots=True)
class _Rule:
    """Where a value goes (target path) and where it comes from (paths, first one present wins)."""

    label: str
    target: tuple[str, ...]
    paths: tuple[RecordPath, ...]
    written: tuple[str, ...]  # the expressions as the user wrote them, for error messages
    null_is_missing: bool = False  # for ids: a null id is no id, so the next path is tried

    def resolve(self, record: dict[str, Any], view: dict[str, Any]) -> Any:
        for path in self.paths:
            value = path.lookup(record if path.reads_bookkeeping else view)
            if value is not MISSING and not (value is None and self.null_is_missing):
                return value
        if len(self.written) == 1:
            raise MappingError(f"{self.label}: {self.written[0]} not found in record")
        raise MappingError(f"{self.label}: none of {', '.join(self.written)} found in record")


def _rule(
    label: str, target: tuple[str, ...], expressions: str | Sequence[str], *, null_is_missing: bool = False
) -> _Rule:
    written = (expressions,) if isinstance(expressions, str) else tuple(expressions)
    if not written:
        raise ValueError(f"{label}: needs at least one JSONPath")
    try:
        paths = tuple(RecordPath(strip_source_prefix(expression, label)) for expression in written)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(label) else f"{label}: {message}") from None
    return _Rule(label, target, paths, written, null_is_missing)


def _target_of(field: str) -> tuple[str, ...]:
    segments = tuple(field.split("."))
    if not all(segments):
        raise ValueError(f"field_map.{field}: not a field name (empty part between dots)")
    if segments[0] in _METADATA_FIELDS:
        raise ValueError(f"field_map.{field}: '{segments[0]}' is an OpenSearch metadata field")
    return segments


def _ingest_rule(expression: str) -> _Rule:
    """ingest_fields copy a value under the path's last field name, as ML Commons does: `$.a.id` -> `id`."""
    path = RecordPath(strip_source_prefix(expression, "ingest_fields"))
    name = path.last_name
    if name is None:
        raise ValueError(f"ingest_fields: '{expression}' does not end in a field name to copy it to")
    if name in _METADATA_FIELDS:
        raise ValueError(f"ingest_fields: '{expression}' would write the metadata field '{name}'")
    return _Rule("ingest_fields", (name,), (path,), (expression,))


def _check_no_overlap(rules: Sequence[_Rule]) -> None:
    """Two rules writing one field, or a field and its parent, would silently overwrite each other.

    Sorted, a target's descendants come right after it, so comparing neighbours finds every clash.
    """
    targets = sorted((rule.target, rule.label) for rule in rules)
    for (shorter, first), (longer, second) in pairwise(targets):
        if longer[: len(shorter)] == shorter:
            raise ValueError(f"{first} and {second} both write '{'.'.join(shorter)}'")


class FieldMapper:
    def __init__(
        self,
        field_map: Mapping[str, str | list[str]],
        ingest_fields: Sequence[str] = (),
        id_path: str | None = None,
    ) -> None:
        rules = [
            _rule(f"field_map.{field}", _target_of(field), paths)
            for field, paths in field_map.items()
            if field != ID_KEY
        ]
        rules.extend(_ingest_rule(expression) for expression in ingest_fields)
        _check_no_overlap(rules)
        self._rules = tuple(rules)

        if ID_KEY in field_map:
            self._id_rule: _Rule | None = _rule(
                "field_map._id", (ID_KEY,), field_map[ID_KEY], null_is_missing=True
            )
        elif id_path is not None:
            self._id_rule = _rule("source.id_path", (ID_KEY,), id_path, null_is_missing=True)
        else:
            self._id_rule = None

        every_path = [path for rule in self._rules for path in rule.paths]
        # Copying the record to hide the bookkeeping key costs a dict per record; most configs never need it.
        self._hides_bookkeeping = any(path.may_expose_bookkeeping for path in every_path)

    def map(self, record: dict[str, Any]) -> MappedDoc:
        view = record
        if self._hides_bookkeeping and BOOKKEEPING_KEY in record:
            view = {key: value for key, value in record.items() if key != BOOKKEEPING_KEY}
        body: dict[str, Any] = {}
        for rule in self._rules:
            value = rule.resolve(record, view)
            parent = body
            for segment in rule.target[:-1]:
                parent = parent.setdefault(segment, {})
            parent[rule.target[-1]] = value
        return MappedDoc(self._doc_id(record, view), body)

    def _doc_id(self, record: dict[str, Any], view: dict[str, Any]) -> str | None:
        if self._id_rule is None:
            return None
        value = self._id_rule.resolve(record, view)
        # bool is an int subclass, and True as an id is a bug in the data, not an id.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            kind = type(value).__name__
            raise MappingError(f"{self._id_rule.label}: the id is a {kind}, not a string or number")
        doc_id = str(value)
        if not doc_id:
            raise MappingError(f"{self._id_rule.label}: the id is an empty string")
        return doc_id
