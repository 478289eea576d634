"""How a chunked record is indexed (`sink.layout`): its documents, from the record the join wrote.

record (the default): one document per record, its passages in a nested field: the mapping's `nested`
property that holds a `knn_vector` (OpenSearch's nested k-NN layout, "Nested field search":
https://docs.opensearch.org/latest/vector-search/specialized-operations/nested-search-knn/).
Each passage is `{"text", "start", "end", <vector subfield>}`: its text, its character offsets in the
record's text, and its vector. The record's other fields come from field_map, beside it.

passage: one document per passage, id `<record id>#<passage number>`, holding the record's mapped fields,
`parent_id` (the record's id, a keyword: what a search groups or filters passages by), `text`, `start`,
`end` and the vector in the mapping's top-level knn_vector field. The ids are deterministic, so a re-run
overwrites; the record counts once, indexed only when all its documents are (ingest/bulk.py add_record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osbatch.chunking.mapping import (
    PARENT_ID,
    PASSAGE_FIELDS,
    nested_vector_fields,
    top_level_vectors,
)
from osbatch.chunking.spec import IndexLayout
from osbatch.field_map import MappingError
from osbatch.models.ingest import MappedDoc
from osbatch.record_paths import BOOKKEEPING_KEY


def _passages(record: dict[str, Any], where: str) -> list[dict[str, Any]]:
    bookkeeping = record.get(BOOKKEEPING_KEY)
    passages = bookkeeping.get("passages") if isinstance(bookkeeping, dict) else None
    if not isinstance(passages, list):
        raise MappingError(f"{where}: the record carries no passages (was it joined by a chunked job?)")
    return passages


@dataclass(frozen=True)
class NestedPassages:
    """The record layout."""

    field: str  # the nested field, dotted if it sits inside an object
    vector: str  # its knn_vector subfield

    def documents(self, record: dict[str, Any], doc: MappedDoc) -> list[MappedDoc]:
        self.fill(record, doc.body)
        return [doc]

    def fill(self, record: dict[str, Any], body: dict[str, Any]) -> None:
        """Put the joined record's passages (steps/support/passage_join.py) in the document's nested field."""
        passages = _passages(record, self.field)
        parent = body
        *objects, name = self.field.split(".")
        for segment in objects:
            parent = parent.setdefault(segment, {})
        parent[name] = [
            {**{name: p[name] for name in PASSAGE_FIELDS}, self.vector: p["vector"]} for p in passages
        ]


@dataclass(frozen=True)
class PassageDocuments:
    """The passage layout."""

    vector: str  # the mapping's top-level knn_vector field

    def documents(self, record: dict[str, Any], doc: MappedDoc) -> list[MappedDoc]:
        passages = _passages(record, self.vector)
        if doc.doc_id is None:
            raise MappingError("the passage layout names each passage after its record's id, and it has none")
        return [
            MappedDoc(
                f"{doc.doc_id}#{number}",
                {
                    **doc.body,
                    PARENT_ID: doc.doc_id,
                    **{name: passage[name] for name in PASSAGE_FIELDS},
                    self.vector: passage["vector"],
                },
            )
            for number, passage in enumerate(passages)
        ]

    def fill(self, record: dict[str, Any], body: dict[str, Any]) -> None:
        raise MappingError("the passage layout writes one document per passage, not one per record")


Layout = NestedPassages | PassageDocuments


def layout_of(layout: IndexLayout, mapping: dict[str, Any]) -> Layout:
    """The configured layout of a chunking pipeline (config validation made sure its mapping has one)."""
    if layout is IndexLayout.PASSAGE:
        return PassageDocuments(top_level_vectors(mapping)[0])
    nested = nested_vector_fields(mapping)[0]
    return NestedPassages(nested.field, nested.vector)
