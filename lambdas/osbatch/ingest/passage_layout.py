"""The record layout of a chunked pipeline: one document per record, its passages in a nested field.

The nested field is the mapping's `nested` property that holds a `knn_vector` (OpenSearch's nested k-NN
layout: "Nested field search", https://docs.opensearch.org/latest/vector-search/specialized-operations/
nested-search-knn/). Each passage is `{"text", "start", "end", <vector subfield>}`: its text, its character
offsets in the record's text, and its vector. The record's other fields come from field_map, beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from osbatch.field_map import MappingError
from osbatch.record_paths import BOOKKEEPING_KEY

KNN_VECTOR = "knn_vector"
NESTED = "nested"


@dataclass(frozen=True)
class NestedPassages:
    field: str  # the nested field, dotted if it sits inside an object
    vector: str  # its knn_vector subfield

    def fill(self, record: dict[str, Any], body: dict[str, Any]) -> None:
        """Put the joined record's passages (steps/support/passage_join.py) in the document's nested field."""
        bookkeeping = record.get(BOOKKEEPING_KEY)
        passages = bookkeeping.get("passages") if isinstance(bookkeeping, dict) else None
        if not isinstance(passages, list):
            raise MappingError(
                f"{self.field}: the record carries no passages (was it joined by a chunked job?)"
            )
        parent = body
        *objects, name = self.field.split(".")
        for segment in objects:
            parent = parent.setdefault(segment, {})
        parent[name] = [
            {"text": p["text"], "start": p["start"], "end": p["end"], self.vector: p["vector"]}
            for p in passages
        ]


def nested_vector_fields(mapping: dict[str, Any]) -> list[NestedPassages]:
    """Every nested property of an index body (PUT /<index>) with a knn_vector subfield."""
    properties = (mapping.get("mappings") or {}).get("properties") or {}
    return list(_nested(properties, ""))


def _nested(properties: dict[str, Any], prefix: str) -> Iterator[NestedPassages]:
    for name, field in properties.items():
        if not isinstance(field, dict):
            continue
        inner = field.get("properties")
        if not isinstance(inner, dict):
            continue
        if field.get("type") == NESTED:
            for sub, spec in inner.items():
                if isinstance(spec, dict) and spec.get("type") == KNN_VECTOR:
                    yield NestedPassages(f"{prefix}{name}", sub)
                    break
        else:
            yield from _nested(inner, f"{prefix}{name}.")
