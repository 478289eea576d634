from __future__ import annotations

from typing import Any

import pytest
from opensearchpy.exceptions import AuthorizationException, RequestError

from osbatch.search.index import IndexMappingConflict, ensure_compatible_index, ensure_index
from tests.unit.fake_opensearch import FakeClient, FakeIndices
from tests.unit.helpers import NESTED_MAPPING

MAPPING = {
    "settings": {"index.knn": True},
    "mappings": {"properties": {"chunk_embedding": {"type": "knn_vector", "dimension": 384}}},
}


def test_a_missing_index_is_created_from_the_config_mapping() -> None:
    # Given a cluster without the index
    client = FakeClient(FakeIndices())

    # When it is ensured
    created = ensure_index(client, "msmarco", MAPPING)

    # Then it is created with the pipeline's settings and mappings
    assert created is True
    assert client.indices.created == [("msmarco", MAPPING)]


def test_an_existing_index_is_left_alone() -> None:
    # Given a cluster where the index exists (or a concurrent run just created it)
    client = FakeClient(FakeIndices(existing={"msmarco": {}}))

    # When it is ensured
    created = ensure_index(client, "msmarco", MAPPING)

    # Then nothing is created and no error escapes, once its primary shards are active (a search of an
    # index still recovering would answer 503)
    assert created is False
    assert client.indices.created == []
    assert client.cluster.health_waits == ["msmarco"]


def test_an_empty_mapping_creates_the_index_without_a_body() -> None:
    # Given a pipeline with no mapping
    client = FakeClient(FakeIndices())

    # When the index is ensured
    ensure_index(client, "plain", {})

    # Then the request has no body, so the cluster's defaults apply
    assert client.indices.created == [("plain", None)]


def test_an_invalid_mapping_is_an_error() -> None:
    # Given a cluster that rejects the mapping
    refusal = RequestError(400, "mapper_parsing_exception", {"error": {"type": "mapper_parsing_exception"}})
    client = FakeClient(FakeIndices(refuse=refusal))

    # When the index is ensured
    # Then the error propagates: ingesting into a wrongly mapped index would make vectors unsearchable
    with pytest.raises(RequestError) as raised:
        ensure_index(client, "msmarco", MAPPING)
    assert raised.value.error == "mapper_parsing_exception"


def test_an_existing_index_with_the_configured_fields_passes_the_check() -> None:
    # Given an index made earlier from the same mapping, with one more field of its own
    mappings = {"properties": {**MAPPING["mappings"]["properties"], "title": {"type": "text"}}}
    client = FakeClient(FakeIndices(existing={"msmarco": mappings}))

    # When it is ensured and checked
    created = ensure_compatible_index(client, "msmarco", MAPPING)

    # Then nothing is created and nothing is refused
    assert created is False and client.indices.created == []


def test_an_existing_index_with_another_dimension_or_type_is_refused() -> None:
    # Given an index whose vector field has 768 dimensions, and a nested field of another type
    wanted = {
        "mappings": {
            "properties": {
                "chunk_embedding": {"type": "knn_vector", "dimension": 384},
                "meta": {"properties": {"lang": {"type": "keyword"}}},
            }
        }
    }
    existing = {
        "properties": {
            "chunk_embedding": {"type": "knn_vector", "dimension": 768},
            "meta": {"properties": {"lang": {"type": "text"}}},
        }
    }
    client = FakeClient(FakeIndices(existing={"msmarco": existing}))

    # When it is checked
    # Then the error names both fields and what they should be, before any inference is paid for
    with pytest.raises(IndexMappingConflict) as raised:
        ensure_compatible_index(client, "msmarco", wanted)
    message = str(raised.value)
    assert "chunk_embedding.dimension is 768, the pipeline needs 384" in message
    assert "meta.lang.type is 'text', the pipeline needs 'keyword'" in message


def test_an_existing_index_without_the_vector_field_is_refused() -> None:
    # Given an index that exists without the pipeline's vector field (it would be mapped as floats)
    client = FakeClient(FakeIndices(existing={"msmarco": {"properties": {"text": {"type": "text"}}}}))

    # When it is checked / Then the missing field is named
    with pytest.raises(IndexMappingConflict, match="chunk_embedding is not mapped"):
        ensure_compatible_index(client, "msmarco", MAPPING)


def test_another_space_type_is_refused() -> None:
    # Given an index whose vectors are compared by l2, and a pipeline that needs cosine similarity
    def vector(space: str) -> dict[str, Any]:
        return {"type": "knn_vector", "dimension": 384, "method": {"name": "hnsw", "space_type": space}}

    wanted = {"mappings": {"properties": {"v": vector("cosinesimil")}}}
    client = FakeClient(FakeIndices(existing={"msmarco": {"properties": {"v": vector("l2")}}}))

    # When it is checked / Then the scores would not mean what the pipeline expects, so it is refused
    with pytest.raises(IndexMappingConflict, match=r"v\.method\.space_type is 'l2'"):
        ensure_compatible_index(client, "msmarco", wanted)


def test_an_existing_index_whose_passages_are_a_plain_object_is_refused() -> None:
    # Given a chunking pipeline's nested passages, and an index that maps the same field as a plain object
    # (GET _mapping leaves an object's type out), with the same subfields
    plain = {
        "properties": {
            "title": {"type": "keyword"},
            "passages": {"properties": NESTED_MAPPING["mappings"]["properties"]["passages"]["properties"]},
        }
    }
    client = FakeClient(FakeIndices(existing={"msmarco": plain}))

    # When it is checked / Then the field is named: its passages' vectors could not be searched as nested
    with pytest.raises(
        IndexMappingConflict, match=r"passages\.type is 'object', the pipeline needs 'nested'"
    ):
        ensure_compatible_index(client, "msmarco", NESTED_MAPPING)


def test_an_existing_index_with_the_nested_passages_passes_the_check() -> None:
    client = FakeClient(FakeIndices(existing={"msmarco": NESTED_MAPPING["mappings"]}))
    assert ensure_compatible_index(client, "msmarco", NESTED_MAPPING) is False


def test_a_passage_layout_index_whose_parent_id_is_text_is_refused() -> None:
    # Given a passage layout's mapping (parent_id a keyword) and an index that maps parent_id as text
    wanted = {
        "mappings": {
            "properties": {
                "parent_id": {"type": "keyword"},
                "embedding": {"type": "knn_vector", "dimension": 3},
            }
        }
    }
    existing = {
        "properties": {"parent_id": {"type": "text"}, "embedding": {"type": "knn_vector", "dimension": 3}}
    }
    client = FakeClient(FakeIndices(existing={"msmarco": existing}))

    # When it is checked / Then the field is named: passages could not be grouped by their record
    with pytest.raises(
        IndexMappingConflict, match=r"parent_id\.type is 'text', the pipeline needs 'keyword'"
    ):
        ensure_compatible_index(client, "msmarco", wanted)


def test_a_domain_that_refuses_cluster_health_still_gets_its_index_checked() -> None:
    # Given an existing index on a domain whose access control refuses the cluster health API
    client = FakeClient(FakeIndices(existing={"msmarco": {}}))

    def refused(**_: Any) -> dict[str, Any]:
        raise AuthorizationException(403, "security_exception", {})

    client.cluster.health = refused  # type: ignore[method-assign]

    # When it is ensured
    created = ensure_index(client, "msmarco", MAPPING)

    # Then the wait is skipped and nothing fails
    assert created is False
