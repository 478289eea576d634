"""The real local OpenSearch node: plugins loaded, lucene k-NN search, and localized faiss mappings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from local.opensearch import OpenSearchNode, localize_mapping
from local.runtime import LocalRuntime

pytestmark = pytest.mark.integration

VECTORS = {"east": [1.0, 0.0, 0.0], "north": [0.0, 1.0, 0.0], "up": [0.0, 0.0, 1.0]}


@pytest.fixture(scope="module")
def node(runtime: LocalRuntime) -> OpenSearchNode:
    # The runtime's node: the one already up (the demo's), or one started for this session and stopped at
    # its end, on the runtime's port and in its home either way.
    return runtime.opensearch


@pytest.fixture(scope="module")
def client(node: OpenSearchNode) -> OpenSearch:
    return OpenSearch(hosts=[node.url], timeout=30)


@pytest.fixture
def index(client: OpenSearch) -> Iterator[str]:
    name = f"osbatch-node-test-{uuid.uuid4().hex[:8]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def index_and_search(client: OpenSearch, index: str, body: dict[str, Any], query: list[float]) -> list[str]:
    client.indices.create(index=index, body=body)
    for doc_id, vector in VECTORS.items():
        client.index(index=index, id=doc_id, body={"v": vector})
    client.indices.refresh(index=index)
    result = client.search(index=index, body={"size": 3, "query": {"knn": {"v": {"vector": query, "k": 3}}}})
    return [hit["_id"] for hit in result["hits"]["hits"]]


def test_k_nn_and_ml_commons_are_loaded(client: OpenSearch) -> None:
    # When the node's plugins are listed
    plugins = {row["component"] for row in client.cat.plugins(format="json")}

    # Then k-NN, ML Commons and the job scheduler ML Commons needs are there
    assert {"opensearch-knn", "opensearch-ml", "opensearch-job-scheduler"} <= plugins


def test_ml_commons_accepts_local_connectors(client: OpenSearch) -> None:
    # When the node's effective settings are read
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    effective = {**settings["defaults"], **settings["persistent"], **settings["transient"]}

    # Then ML Commons trusts loopback endpoints and runs on this data node without memory refusals
    assert r"^http://127\.0\.0\.1.*" in effective["plugins.ml_commons.trusted_connector_endpoints_regex"]
    assert effective["plugins.ml_commons.connector.private_ip_enabled"] == "true"
    assert effective["plugins.ml_commons.only_run_on_ml_node"] == "false"
    assert effective["plugins.ml_commons.native_memory_threshold"] == "100"
    assert effective["cluster.routing.allocation.disk.threshold_enabled"] == "false"


def test_lucene_cosine_knn_query_returns_the_nearest_document_first(client: OpenSearch, index: str) -> None:
    # Given a lucene hnsw cosine index with three orthogonal vectors
    method = {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}
    body = {
        "settings": {"index": {"knn": True, "number_of_replicas": 0}},
        "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 3, "method": method}}},
    }

    # When it is searched with a vector close to "north"
    ranked = index_and_search(client, index, body, query=[0.1, 0.9, 0.05])

    # Then "north" comes first
    assert ranked[0] == "north"
    assert sorted(ranked) == sorted(VECTORS)


def test_a_localized_faiss_mapping_creates_a_working_index(client: OpenSearch, index: str) -> None:
    # Given a production faiss mapping, which would crash this node on its first document
    method = {"name": "hnsw", "engine": "faiss", "space_type": "l2", "parameters": {"m": 16, "ef_search": 64}}
    body = {
        "settings": {"index": {"knn": True, "number_of_replicas": 0}},
        "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 3, "method": method}}},
    }

    # When it is localized and used
    localized, notes = localize_mapping(body, index=index)
    ranked = index_and_search(client, index, localized, query=[0.05, 0.1, 0.9])

    # Then the index is on lucene, it answers, and the change was reported
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]["v"]
    assert mapping["method"]["engine"] == "lucene"
    assert ranked[0] == "up"
    assert notes and notes[0].startswith(f"index {index} field v: faiss -> lucene")
