"""What a chunking pipeline's index mapping must hold, read from the config's PUT /<index> body (pure).

record layout: one `nested` property with a `knn_vector` subfield (OpenSearch's nested k-NN layout); passage
layout: one top-level `knn_vector` and `parent_id` as a keyword. ingest/passage_layout.py writes the
documents; config validation refuses a mapping that cannot hold them, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

KNN_VECTOR = "knn_vector"
NESTED = "nested"
PARENT_ID = "parent_id"
PASSAGE_FIELDS = ("text", "start", "end")  # besides the vector, in each passage (nested or document)


@dataclass(frozen=True)
class NestedVector:
    field: str  # the nested field, dotted if it sits inside an object
    vector: str  # its knn_vector subfield


def top_level_vectors(mapping: dict[str, Any]) -> list[str]:
    properties = (mapping.get("mappings") or {}).get("properties") or {}
    return [
        name
        for name, field in properties.items()
        if isinstance(field, dict) and field.get("type") == KNN_VECTOR
    ]


def passage_layout_fits(mapping: dict[str, Any], field_map: Mapping[str, Any]) -> None:
    """Raise ValueError naming the field when a passage layout's mapping or field_map cannot hold passages."""
    vectors = top_level_vectors(mapping)
    if len(vectors) != 1:
        raise ValueError(
            "sink.mapping.mappings.properties: the passage layout writes each passage's vector in the one "
            f"top-level knn_vector field; found {', '.join(vectors) or 'none'}"
        )
    properties = (mapping.get("mappings") or {}).get("properties") or {}
    if (properties.get(PARENT_ID) or {}).get("type") != "keyword":
        raise ValueError(
            f"sink.mapping.mappings.properties.{PARENT_ID}: the passage layout needs it mapped as a keyword "
            "(each passage's record id, which searches group and filter by)"
        )
    reserved = {PARENT_ID, *PASSAGE_FIELDS, vectors[0]}
    for name in field_map:
        if name.split(".")[0] in reserved:
            raise ValueError(
                f"sink.field_map.{name}: the passage layout writes '{name.split('.')[0]}' itself"
            )


def nested_vector_fields(mapping: dict[str, Any]) -> list[NestedVector]:
    """Every nested property of an index body (PUT /<index>) with a knn_vector subfield."""
    properties = (mapping.get("mappings") or {}).get("properties") or {}
    return list(_nested(properties, ""))


def _nested(properties: dict[str, Any], prefix: str) -> Iterator[NestedVector]:
    for name, field in properties.items():
        if not isinstance(field, dict):
            continue
        inner = field.get("properties")
        if not isinstance(inner, dict):
            continue
        if field.get("type") == NESTED:
            for sub, spec in inner.items():
                if isinstance(spec, dict) and spec.get("type") == KNN_VECTOR:
                    yield NestedVector(f"{prefix}{name}", sub)
                    break
        else:
            yield from _nested(inner, f"{prefix}{name}.")
