"""localize_mapping: production k-NN mappings rewritten for the local node's lucene-only k-NN plugin."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.opensearch import UnsupportedLocalMapping, localize_mapping


def knn_field(**overrides: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"type": "knn_vector", "dimension": 384}
    field.update(overrides)
    return field


def test_faiss_field_moves_to_lucene_and_keeps_what_lucene_supports() -> None:
    # Given a faiss hnsw field with faiss-only parameters
    method = {
        "name": "hnsw",
        "engine": "faiss",
        "space_type": "cosinesimil",
        "parameters": {"m": 16, "ef_construction": 128, "ef_search": 100, "encoder": {"name": "sq"}},
    }
    mapping = {"properties": {"embedding": knn_field(method=method), "text": {"type": "text"}}}

    # When it is localized for index docs
    localized, notes = localize_mapping(mapping, index="docs")

    # Then the field is on lucene hnsw with the same space and graph parameters, and the note says why
    assert localized["properties"]["embedding"]["method"] == {
        "name": "hnsw",
        "engine": "lucene",
        "space_type": "cosinesimil",
        "parameters": {"m": 16, "ef_construction": 128},
    }
    assert localized["properties"]["text"] == {"type": "text"}
    assert notes == [
        "index docs field embedding: faiss -> lucene (local node has no native k-NN libraries); "
        "dropped parameters ef_search, encoder (not supported by lucene)"
    ]


def test_input_mapping_is_not_modified() -> None:
    # Given a faiss mapping and a copy of it
    mapping = {"properties": {"v": knn_field(method={"name": "hnsw", "engine": "faiss"})}}
    before = copy.deepcopy(mapping)

    # When it is localized
    localize_mapping(mapping)

    # Then the caller's mapping is unchanged
    assert mapping == before


def test_lucene_field_is_left_alone() -> None:
    # Given a field already on lucene
    method = {"name": "hnsw", "engine": "lucene", "space_type": "l2"}
    mapping = {"properties": {"v": knn_field(method=method)}}

    # When it is localized
    localized, notes = localize_mapping(mapping, index="docs")

    # Then nothing changes and nothing is reported
    assert localized == mapping
    assert notes == []


def test_field_without_engine_gets_lucene_because_the_default_is_faiss() -> None:
    # Given a knn_vector field with no method, whose engine OpenSearch 3.x would default to faiss
    mapping = {"properties": {"v": knn_field(space_type="l2")}}

    # When it is localized
    localized, notes = localize_mapping(mapping)

    # Then it gets an explicit lucene hnsw method and keeps its field-level space type
    assert localized["properties"]["v"] == knn_field(
        space_type="l2", method={"name": "hnsw", "engine": "lucene"}
    )
    assert notes == [
        "field v: no engine (defaults to faiss) -> lucene (local node has no native k-NN libraries)"
    ]


def test_nmslib_l1_becomes_lucene_l2() -> None:
    # Given an nmslib field using l1, which lucene lacks
    mapping = {
        "properties": {"v": knn_field(method={"name": "hnsw", "engine": "nmslib", "space_type": "l1"})}
    }

    # When it is localized
    localized, notes = localize_mapping(mapping, index="docs")

    # Then it uses lucene's nearest space, l2, and the note names both changes
    assert localized["properties"]["v"]["method"] == {"name": "hnsw", "engine": "lucene", "space_type": "l2"}
    assert notes == [
        "index docs field v: nmslib -> lucene (local node has no native k-NN libraries); space_type l1 -> l2"
    ]


def test_ivf_and_on_disk_settings_become_plain_hnsw() -> None:
    # Given a faiss IVF field in on_disk mode
    method = {"name": "ivf", "engine": "faiss", "space_type": "innerproduct", "parameters": {"nlist": 128}}
    mapping = {"properties": {"v": knn_field(method=method, mode="on_disk", compression_level="32x")}}

    # When it is localized
    localized, notes = localize_mapping(mapping)

    # Then it is lucene hnsw with no faiss-only keys left
    assert localized["properties"]["v"] == knn_field(
        method={"name": "hnsw", "engine": "lucene", "space_type": "innerproduct", "parameters": {}}
    )
    assert "method ivf -> hnsw (lucene has no other)" in notes[0]
    assert "dropped mode=on_disk" in notes[0]
    assert "dropped compression_level=32x" in notes[0]


def test_whole_index_body_and_nested_fields_are_handled() -> None:
    # Given a create-index body whose vector sits inside an object field
    body = {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "properties": {"passage": {"properties": {"embedding": knn_field(method={"engine": "faiss"})}}}
        },
    }

    # When it is localized
    localized, notes = localize_mapping(body, index="msmarco")

    # Then settings survive and the nested field is rewritten under its dotted path
    assert localized["settings"] == {"index": {"knn": True}}
    assert (
        localized["mappings"]["properties"]["passage"]["properties"]["embedding"]["method"]["engine"]
        == "lucene"
    )
    assert notes[0].startswith("index msmarco field passage.embedding: faiss -> lucene")


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (knn_field(model_id="trained-pq"), "trained-model"),
        (knn_field(data_type="binary", method={"engine": "faiss"}), "binary vectors"),
        (knn_field(method={"engine": "faiss", "space_type": "hamming"}), "space_type hamming"),
    ],
)
def test_fields_only_native_engines_can_serve_are_refused(field: dict[str, Any], reason: str) -> None:
    # Given a field that lucene cannot emulate
    mapping = {"properties": {"v": field}}

    # When it is localized, Then it fails with a message naming the index, field and reason
    with pytest.raises(UnsupportedLocalMapping, match=rf"index docs field v: .*{reason}"):
        localize_mapping(mapping, index="docs")
