"""Which of the three index layouts a pipeline's mapping describes, read once for the search side.

- flat: one document per record with a top-level knn_vector (no chunking);
- record: one document per record, its passages in a `nested` field whose objects hold the passage's
  `text`, `start`, `end` and a knn_vector: OpenSearch's nested k-NN layout ("Nested field search",
  https://docs.opensearch.org/latest/vector-search/specialized-operations/nested-search-knn/);
- passage: one document per passage, with `parent_id` (keyword: the record's id) beside its `text`,
  `start`, `end` and a top-level knn_vector; search collapses on `parent_id` so hits are records again
  ("Collapse search results", https://docs.opensearch.org/latest/search-plugins/collapse-search/).

The layout is read from `sink.mapping`, the one place both the ingest side and search agree on, so a
pipeline needs no further setting to be searched as it was indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from osbatch.config import PipelineConfig

# The fields of one passage, in the nested objects of the record layout and the documents of the passage
# layout alike.
PASSAGE_TEXT = "text"
PASSAGE_START = "start"
PASSAGE_END = "end"
PARENT_ID = "parent_id"
PASSAGE_FIELDS = (PASSAGE_TEXT, PASSAGE_START, PASSAGE_END)


class LayoutKind(StrEnum):
    FLAT = "flat"
    RECORD = "record"
    PASSAGE = "passage"


@dataclass(frozen=True)
class SearchLayout:
    kind: LayoutKind
    vector_field: str  # the full path a query names: `passages.embedding` in the record layout
    text_field: str  # BM25's field in hybrid mode, full path too
    nested_path: str | None = None  # the record layout's nested field

    def passage_field(self, name: str) -> str:
        """The full path of one of a passage's fields (`passages.text`, or `text` in the passage layout)."""
        return f"{self.nested_path}.{name}" if self.nested_path else name


def search_layout(config: PipelineConfig) -> SearchLayout:
    """The layout of the pipeline's index; ValueError when its mapping has no knn_vector to search."""
    properties: dict[str, Any] = config.sink.mapping.get("mappings", {}).get("properties", {})
    configured = config.search.vector_field
    text_set = "text_field" in config.search.model_fields_set
    for name, spec in properties.items():
        if not isinstance(spec, dict) or spec.get("type") != "nested":
            continue
        inner = spec.get("properties", {})
        vectors = [field for field, sub in inner.items() if _is_vector(sub)]
        wanted = configured.split(".", 1)[1] if configured and configured.startswith(f"{name}.") else None
        if (configured and wanted is None) or not vectors:
            continue
        vector = wanted or vectors[0]
        text = config.search.text_field if text_set else f"{name}.{PASSAGE_TEXT}"
        return SearchLayout(LayoutKind.RECORD, f"{name}.{vector}", text, nested_path=str(name))
    vector = configured or next((str(name) for name, spec in properties.items() if _is_vector(spec)), None)
    if vector is None:
        raise ValueError(f"pipeline {config.name}: the index mapping has no knn_vector field to search")
    parent = properties.get(PARENT_ID)
    if isinstance(parent, dict) and parent.get("type") == "keyword":
        text = config.search.text_field if text_set else PASSAGE_TEXT
        return SearchLayout(LayoutKind.PASSAGE, vector, text)
    return SearchLayout(LayoutKind.FLAT, vector, config.search.text_field)


def _is_vector(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("type") == "knn_vector"
