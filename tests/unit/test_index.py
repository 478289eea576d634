from __future__ import annotations

from typing import Any

import pytest
from opensearchpy.exceptions import RequestError

from osbatch.search.index import ensure_index

MAPPING = {
    "settings": {"index.knn": True},
    "mappings": {"properties": {"chunk_embedding": {"type": "knn_vector", "dimension": 384}}},
}


class FakeIndices:
    """indices.create as OpenSearch answers it: 400 resource_already_exists_exception if the index exists."""

    def __init__(self, existing: set[str] | None = None, refuse: RequestError | None = None) -> None:
        self.existing = existing or set()
        self.refuse = refuse
        self.created: list[tuple[str, Any]] = []

    def create(self, *, index: str, body: Any = None) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        if index in self.existing:
            raise RequestError(
                400,
                "resource_already_exists_exception",
                {"error": {"type": "resource_already_exists_exception"}},
            )
        self.existing.add(index)
        self.created.append((index, body))
        return {"acknowledged": True, "index": index}


class FakeClient:
    def __init__(self, indices: FakeIndices) -> None:
        self.indices = indices


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
    client = FakeClient(FakeIndices(existing={"msmarco"}))

    # When it is ensured
    created = ensure_index(client, "msmarco", MAPPING)

    # Then nothing is created and no error escapes
    assert created is False
    assert client.indices.created == []


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
