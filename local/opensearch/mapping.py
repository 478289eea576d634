"""Make a production k-NN mapping work on the local node.

The k-NN plugin zip on Maven Central ships no native libraries, so locally only the pure-Java lucene engine
works: the first document written to a faiss or nmslib field kills the node with an UnsatisfiedLinkError.
OpenSearch 3.x also picks faiss when a field names no engine, so those fields are rewritten too.
"""

from __future__ import annotations

import copy
from typing import Any

LOCAL_ENGINE = "lucene"
REASON = "local node has no native k-NN libraries"

_LUCENE_SPACES = {"l2", "cosinesimil", "innerproduct"}
_NEAREST_SPACE = {"l1": "l2", "linf": "l2"}  # rankings differ a little; recall tests still hold
_LUCENE_PARAMETERS = {"m", "ef_construction"}
_NATIVE_ONLY_FIELD_KEYS = ("mode", "compression_level")  # on-disk quantization is a faiss feature


class UnsupportedLocalMapping(ValueError):
    """A k-NN field that only native engines can serve; the local node cannot emulate it."""


def localize_mapping(
    mapping: dict[str, Any], *, index: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Return a copy with every knn_vector field on lucene, and one note per field that changed.

    Accepts an index's "mappings" or a whole create-index body (settings + mappings).
    """
    localized = copy.deepcopy(mapping)
    mappings = localized.get("mappings", localized)
    notes: list[str] = []
    _walk(mappings.get("properties", {}), "", index, notes)
    return localized, notes


def _walk(properties: dict[str, Any], prefix: str, index: str | None, notes: list[str]) -> None:
    for name, field in properties.items():
        if not isinstance(field, dict):
            continue
        path = f"{prefix}{name}"
        if field.get("type") == "knn_vector":
            where = f"index {index} field {path}" if index else f"field {path}"
            changes = _localize_field(field, where)
            if changes:
                notes.append(f"{where}: {'; '.join(changes)}")
        if isinstance(field.get("properties"), dict):
            _walk(field["properties"], f"{path}.", index, notes)


def _localize_field(field: dict[str, Any], where: str) -> list[str]:
    if "model_id" in field:
        raise UnsupportedLocalMapping(f"{where}: a trained-model k-NN field needs faiss, which the {REASON}")
    if field.get("data_type") == "binary":
        raise UnsupportedLocalMapping(f"{where}: binary vectors need faiss, which the {REASON}")
    method = field.setdefault("method", {"name": "hnsw"})
    engine = method.get("engine")
    if engine == LOCAL_ENGINE:
        return []
    changes = [f"{engine or 'no engine (defaults to faiss)'} -> {LOCAL_ENGINE} ({REASON})"]
    method["engine"] = LOCAL_ENGINE
    if method.get("name", "hnsw") != "hnsw":
        changes.append(f"method {method['name']} -> hnsw (lucene has no other)")
        method["name"] = "hnsw"
    changes += _localize_space(method if "space_type" in method else field, where)
    parameters = method.get("parameters") or {}
    dropped = sorted(set(parameters) - _LUCENE_PARAMETERS)
    if dropped:
        method["parameters"] = {key: value for key, value in parameters.items() if key in _LUCENE_PARAMETERS}
        changes.append(f"dropped parameters {', '.join(dropped)} (not supported by lucene)")
    for key in _NATIVE_ONLY_FIELD_KEYS:
        if key in field:
            changes.append(f"dropped {key}={field.pop(key)}")
    return changes


def _localize_space(holder: dict[str, Any], where: str) -> list[str]:
    space = holder.get("space_type")
    if space is None or space in _LUCENE_SPACES:
        return []
    if space not in _NEAREST_SPACE:
        raise UnsupportedLocalMapping(f"{where}: space_type {space} has no lucene equivalent")
    holder["space_type"] = _NEAREST_SPACE[space]
    return [f"space_type {space} -> {holder['space_type']}"]
