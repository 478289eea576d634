"""The search response processor's examples on the local node: ML Commons' real `ml_inference` processor
calling real models. The examples are those of OpenSearch's page "ML inference search response processor":
https://docs.opensearch.org/latest/search-plugins/search-pipelines/ml-inference-search-response/

`osbatch setup` provisions tests/integration/pipelines/search.yaml (models, connectors, search pipelines);
each test indexes the page's own sample documents into an index of its own and searches through one
search pipeline. Model outputs are checked against the local MiniLM computed here, independently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from cli.main import main
from local.model.embedder import OnnxSentenceEmbedder
from local.model_server.models import EXTRACTIVE_LABEL
from local.paths import REPO_ROOT
from local.runtime import LocalRuntime
from osbatch.search.client import opensearch_client

pytestmark = pytest.mark.integration

CONFIG = "tests/integration/pipelines/search.yaml"
PIPELINE = "search-e2e"
# Every vector the node computes must match the local MiniLM to this cosine (bench/embed.py's bar, 0.99).
MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def client(runtime: LocalRuntime) -> Iterator[OpenSearch]:
    # Given the search side provisioned from the config (twice: the second run must change nothing)
    assert main(["--pipelines", CONFIG, "setup", "--pipeline", PIPELINE]) == 0
    yield opensearch_client(runtime.opensearch.url)


@pytest.fixture(scope="module")
def embedder() -> OnnxSentenceEmbedder:
    return OnnxSentenceEmbedder.default()


def index_docs(client: OpenSearch, index: str, docs: dict[str, dict[str, Any]]) -> None:
    if client.indices.exists(index=index):
        client.indices.delete(index=index)
    for doc_id, doc in docs.items():
        client.index(index=index, id=doc_id, body=doc)
    client.indices.refresh(index=index)


def search(client: OpenSearch, index: str, body: dict[str, Any], pipeline: str | None) -> dict[str, Any]:
    params = {"search_pipeline": pipeline} if pipeline else None
    return dict(client.search(index=index, body=body, params=params))


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


PASSAGES = {"1": {"passage_text": "hello world"}, "2": {"passage_text": "gzip compresses files"}}


def test_setup_rerun_changes_nothing(client: OpenSearch, capsys: pytest.CaptureFixture[str]) -> None:
    # When setup runs again on the same config
    capsys.readouterr()
    assert main(["--pipelines", CONFIG, "setup", "--pipeline", PIPELINE]) == 0
    # Then every model and search pipeline is reported unchanged
    out = capsys.readouterr().out
    assert "nothing changed" in out
    assert "created" not in out and "updated" not in out


def test_example_1_remote_embedding_model_adds_passage_embedding(
    client: OpenSearch, embedder: OnnxSentenceEmbedder
) -> None:
    # Given two passages
    index_docs(client, "osbatch-it-my-index", PASSAGES)
    # When they are searched through the remote-model pipeline (many-to-one: one predict for all hits)
    response = search(
        client, "osbatch-it-my-index", {"query": {"match_all": {}}}, "ml-inference-remote-embedding"
    )
    # Then each hit carries the embedding of its own passage_text
    hits = response["hits"]["hits"]
    assert len(hits) == 2
    for hit in hits:
        source = hit["_source"]
        assert len(source["passage_embedding"]) == 384
        expected = embedder.embed([source["passage_text"]])[0]
        assert cosine(source["passage_embedding"], expected) >= MIN_COSINE


def test_example_2_local_onnx_model_in_ml_commons(client: OpenSearch, embedder: OnnxSentenceEmbedder) -> None:
    # Given the passages, and the ONNX model that ML Commons itself runs (function_name text_embedding)
    index_docs(client, "osbatch-it-my-index", PASSAGES)
    # When the page's term query runs through the local-model pipeline
    body = {"query": {"term": {"passage_text": {"value": "hello"}}}}
    response = search(client, "osbatch-it-my-index", body, "ml-inference-local-embedding")
    # Then the one hit has a passage_embedding computed inside the node, equal to the local MiniLM's
    (hit,) = response["hits"]["hits"]
    vector = hit["_source"]["passage_embedding"]
    # $.inference_results.*.output.*.data of one document is a list holding its one vector
    vector = vector[0] if vector and isinstance(vector[0], list) else vector
    assert len(vector) == 384
    assert cosine(vector, embedder.embed(["hello world"])[0]) >= MIN_COSINE


REVIEWS = {
    "1": {"review": "Customer acquisition cost: January: $50, New customers: January: 500."},
    "2": {"review": "Customer acquisition cost: February: $45, New customers: February: 600."},
    "3": {"review": "Customer acquisition cost: March: $40, New customers: March: 750."},
}


def test_example_3_llm_answer_goes_to_the_response_ext(client: OpenSearch) -> None:
    # Given the three reviews
    index_docs(client, "osbatch-it-reviews", REVIEWS)
    # When they are searched through the LLM pipeline
    response = search(client, "osbatch-it-reviews", {"query": {"match_all": {}}}, "review-llm")
    # Then the hits are untouched and the answer is in ext.ml_inference.llm_response
    assert {hit["_id"] for hit in response["hits"]["hits"]} == set(REVIEWS)
    assert all("llm_response" not in hit["_source"] for hit in response["hits"]["hits"])
    answer = response["ext"]["ml_inference"]["llm_response"]
    # And it says it is extractive, and is made of the reviews the search returned (the context), not canned
    assert answer.startswith(EXTRACTIVE_LABEL)
    quoted = answer.removeprefix(EXTRACTIVE_LABEL)
    used = [doc["review"] for doc in REVIEWS.values() if doc["review"] in quoted]
    assert len(used) >= 1
    assert len(quoted.strip()) == len(" ".join(used))


DIARY = {"1": {"diary": "I hate you"}, "2": {"diary": "I love you"}, "3": {"diary": "I dislike you"}}


def test_example_4_text_similarity_rerank_orders_hits_by_the_model_scores(
    client: OpenSearch, embedder: OnnxSentenceEmbedder
) -> None:
    # Given the three diary entries, which BM25 scores alike for "I adore you"
    index_docs(client, "osbatch-it-diary", DIARY)
    body = {"query": {"match": {"diary": {"query": "I adore you"}}}}
    plain = search(client, "osbatch-it-diary", body, None)["hits"]["hits"]
    # When the same query runs through the one_to_one similarity pipeline with rerank by_field
    reranked = search(client, "osbatch-it-diary", body, "diary-rerank")["hits"]["hits"]
    # Then the hits are ordered by the similarity of each entry to the query text, highest first
    query_vector = embedder.embed(["I adore you"])[0]
    expected = {
        hit_id: cosine(embedder.embed([doc["diary"]])[0], query_vector) for hit_id, doc in DIARY.items()
    }
    order = [hit["_id"] for hit in reranked]
    assert order == sorted(expected, key=lambda hit_id: -expected[hit_id])
    # And the scores are the model's, the order differs from BM25's, and rank_score was removed
    for hit in reranked:
        assert hit["_score"] == pytest.approx(expected[hit["_id"]], abs=0.01)
        assert "rank_score" not in hit["_source"]
    assert order != [hit["_id"] for hit in plain]


def test_ignore_missing(client: OpenSearch, embedder: OnnxSentenceEmbedder) -> None:
    # Given two passages and a document without the passage_text field the processor reads
    index_docs(client, "osbatch-it-mixed", {**PASSAGES, "3": {"title": "no passage here"}})
    query = {"query": {"match_all": {}}}
    # When ignore_missing is false, the search fails and names the missing field
    with pytest.raises(TransportError, match="passage_text"):
        search(client, "osbatch-it-mixed", query, "missing-field-strict")
    # And when it is true, the documents with the field get their vectors and the other is left as it was
    hits = {
        hit["_id"]: hit["_source"]
        for hit in search(client, "osbatch-it-mixed", query, "missing-field-ignored")["hits"]["hits"]
    }
    assert hits["3"] == {"title": "no passage here"}
    for doc_id in PASSAGES:
        expected = embedder.embed([hits[doc_id]["passage_text"]])[0]
        assert cosine(hits[doc_id]["vector"], expected) >= MIN_COSINE


def test_ignore_failure_with_a_model_that_errors(client: OpenSearch) -> None:
    # Given documents whose mapped field is a number, which the embedding model refuses (HTTP 400)
    index_docs(client, "osbatch-it-ratings", {"1": {"rating": 4}, "2": {"rating": 5}})
    query = {"query": {"match_all": {}}}
    # When ignore_failure is false, the search fails with the model's own error
    with pytest.raises(TransportError, match="not a string"):
        search(client, "osbatch-it-ratings", query, "failing-model-strict")
    # And when it is true, the search succeeds with the hits as they were
    hits = search(client, "osbatch-it-ratings", query, "failing-model-ignored")["hits"]["hits"]
    assert sorted(hit["_source"]["rating"] for hit in hits) == [4, 5]
    assert all("vector" not in hit["_source"] for hit in hits)


def test_override_false_keeps_and_true_replaces_an_existing_field(
    client: OpenSearch, embedder: OnnxSentenceEmbedder
) -> None:
    # Given a document that already has a passage_embedding
    index_docs(
        client, "osbatch-it-stale", {"1": {"passage_text": "hello world", "passage_embedding": "stale"}}
    )
    query = {"query": {"match_all": {}}}
    # When override is false, the stored value stays
    (kept,) = search(client, "osbatch-it-stale", query, "keep-existing-field")["hits"]["hits"]
    assert kept["_source"]["passage_embedding"] == "stale"
    # And when it is true, the model's vector replaces it
    (replaced,) = search(client, "osbatch-it-stale", query, "override-existing-field")["hits"]["hits"]
    vector = replaced["_source"]["passage_embedding"]
    assert cosine(vector, embedder.embed(["hello world"])[0]) >= MIN_COSINE


def test_search_modes_find_the_known_answers_and_hnsw_matches_exact_search(
    client: OpenSearch, embedder: OnnxSentenceEmbedder
) -> None:
    from osbatch.config import load_pipeline
    from osbatch.search.queries import Mode
    from tests.integration.search_quality import (
        hnsw_recall,
        index_sample,
        load_queries,
        recall,
        sample_records,
    )

    # Given the sample indexed with MiniLM vectors, and queries whose answers are known
    config = load_pipeline(CONFIG)
    assert index_sample(client, config, embedder, sample_records()) > 2600
    queries = load_queries()
    # When each mode answers every query
    scores = {mode: recall(client, config, queries, mode, embedder) for mode in Mode}
    # Then the node's own embedding (neural) finds what the local embedding (knn) finds: same model
    assert scores[Mode.NEURAL] == pytest.approx(scores[Mode.KNN], abs=0.05)
    # And every mode finds most answers in its top 10, hybrid at least as many as BM25's absence costs knn
    assert min(scores.values()) >= 0.7
    assert scores[Mode.HYBRID] >= scores[Mode.KNN] - 0.05
    # And the HNSW graph returns nearly the exact top 10
    assert hnsw_recall(client, config, queries, embedder) >= 0.9


def test_an_invalid_processor_is_refused_before_anything_is_sent(
    client: OpenSearch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a config whose new pipeline writes to the response ext one_to_one (the processor page forbids it)
    import yaml

    data = yaml.safe_load((REPO_ROOT / CONFIG).read_text())
    data["search_pipelines"].append(
        {
            "name": "never-created",
            "response_processors": [
                {
                    "ml_inference": {
                        "model": "answerer",
                        "one_to_one": True,
                        "input_map": [{"context": "review"}],
                        "output_map": [{"ext.ml_inference.llm_response": "response"}],
                    }
                }
            ],
        }
    )
    path = tmp_path / "invalid.yaml"
    path.write_text(yaml.safe_dump(data))
    # When setup runs on it
    code = main(["--pipelines", str(path), "setup", "--pipeline", PIPELINE])
    # Then it fails with the rule in the message, and the node never got the pipeline
    assert code == 2
    assert "one_to_one does not allow" in capsys.readouterr().err
    with pytest.raises(TransportError) as missing:
        client.transport.perform_request("GET", "/_search/pipeline/never-created")
    assert missing.value.status_code == 404
