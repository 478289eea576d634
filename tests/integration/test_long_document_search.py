"""`osbatch search` over long documents on the local node: documents come back, not passages, each with its
best passages (text and offsets), in knn, neural and hybrid modes, in both layouts; and search pipelines
(embedding enrichment, an answer into ext, a rerank by the best passage) run on these indices.

The indices are loaded straight from samples/python-modules (local/sample_indices.py: the sample's own
chunking, the local MiniLM's vectors), so what is tested is search, whatever the ingest side does. The
expected order is computed here independently: a document scores as its best passage's cosine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from cli.main import main
from cli.search import Hit, hits_of, run_search
from local.model import Embedder
from local.model_server.models import EXTRACTIVE_LABEL
from local.paths import REPO_ROOT
from local.runtime import LocalRuntime
from local.sample_indices import chunk_records, load_index
from osbatch.config import PipelineConfig, load_pipeline
from osbatch.search.client import opensearch_client
from osbatch.search.queries import Mode

pytestmark = pytest.mark.integration

CONFIGS = REPO_ROOT / "tests" / "integration" / "long_documents"
RECORD = CONFIGS / "record.yaml"
PASSAGE = CONFIGS / "passage.yaml"
SAMPLE = REPO_ROOT / "samples" / "python-modules"
# Modules that share a theme (compression and archives) and a few others, and the sample's questions on them.
MODULES = ("bz2", "gzip", "lzma", "zipfile", "tarfile", "calendar", "csv", "json")
# The l2 score of unit vectors: 1 / (1 + |a - b|^2) = 1 / (3 - 2 cos). The index holds the same float32
# vectors the test computes, so only float rounding in the two sums separates the scores.
SCORE_TOLERANCE = 1e-3


def records() -> list[dict[str, Any]]:
    lines = (SAMPLE / "modules.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["_id"] in MODULES]


def questions() -> list[dict[str, Any]]:
    lines = (SAMPLE / "questions.jsonl").read_text().splitlines()
    return [question for question in map(json.loads, lines) if question["document_id"] in MODULES]


@pytest.fixture(scope="module")
def client(runtime: LocalRuntime, minilm: Embedder) -> Iterator[OpenSearch]:
    # Given the sample's modules loaded in both layouts, and each pipeline's search side set up
    node = opensearch_client(runtime.opensearch.url)
    for path in (RECORD, PASSAGE):
        load_index(node, load_pipeline(path), records(), minilm)
        assert main(["--pipelines", str(path), "setup", "--pipeline", load_pipeline(path).name]) == 0
    yield node


@pytest.fixture(scope="module")
def record() -> PipelineConfig:
    return load_pipeline(RECORD)


@pytest.fixture(scope="module")
def passage() -> PipelineConfig:
    return load_pipeline(PASSAGE)


def query_vector(minilm: Embedder) -> Any:
    return lambda text: [float(x) for x in minilm.embed([text])[0]]


@pytest.fixture(scope="module")
def passage_vectors(record: PipelineConfig, minilm: Embedder) -> dict[str, Any]:
    """Each module's passage vectors, computed here, without the node."""
    assert record.source.chunking is not None
    chunked = chunk_records(records(), record.source.chunking)
    return {str(item.record["_id"]): minilm.embed([p.text for p in item.passages]) for item in chunked}


def best_passage_cosines(minilm: Embedder, passage_vectors: dict[str, Any], query: str) -> dict[str, float]:
    """Each module's score as its best passage's cosine to the query."""
    query_vec = minilm.embed([query])[0]
    return {module: float(np.max(vectors @ query_vec)) for module, vectors in passage_vectors.items()}


def check_documents(hits: list[Hit]) -> None:
    """Each hit a distinct document, with its best passages, best first, at their offsets in its text."""
    texts = {record["_id"]: record["text"] for record in records()}
    assert len({hit.doc_id for hit in hits}) == len(hits) and hits
    for hit in hits:
        assert hit.passages, f"{hit.doc_id} came without its best passages"
        scores = [passage.score for passage in hit.passages]
        assert scores == sorted(scores, reverse=True)
        for found in hit.passages:
            assert found.start is not None and found.end is not None
            assert texts[hit.doc_id][found.start : found.end] == found.text


def test_knn_returns_documents_scored_by_their_best_passage(
    client: OpenSearch, record: PipelineConfig, minilm: Embedder, passage_vectors: dict[str, Any]
) -> None:
    for question in questions():
        # When each question is searched in knn mode on the record layout
        response = run_search(client, record, question["question"], k=5, query_vector=query_vector(minilm))
        hits = hits_of(response, record)
        # Then the hits are documents with their best passages, and a document scores as its best passage
        check_documents(hits)
        for hit in hits:
            assert hit.score == pytest.approx(hit.passages[0].score)
        # And the order is the best-passage cosine's, computed here without the node
        expected = best_passage_cosines(minilm, passage_vectors, question["question"])
        top = max(expected, key=lambda module: expected[module])
        assert hits[0].doc_id == top
        assert hits[0].score == pytest.approx(1 / (3 - 2 * expected[top]), abs=SCORE_TOLERANCE)


def test_neural_and_hybrid_modes_return_documents_too(
    client: OpenSearch, record: PipelineConfig, minilm: Embedder
) -> None:
    question = questions()[0]["question"]
    knn = hits_of(run_search(client, record, question, k=5, query_vector=query_vector(minilm)), record)
    # When the node embeds the query itself (neural: the pipeline's query_model)
    neural = hits_of(run_search(client, record, question, k=5, mode=Mode.NEURAL), record)
    # Then it finds the same documents in the same order, with their passages
    check_documents(neural)
    assert [hit.doc_id for hit in neural] == [hit.doc_id for hit in knn]
    # And hybrid (BM25 on the passage text, nested, plus the vector) returns documents with passages
    hybrid = hits_of(
        run_search(client, record, question, k=5, mode=Mode.HYBRID, query_vector=query_vector(minilm)), record
    )
    check_documents(hybrid)


def test_passage_layout_collapses_passages_into_documents(
    client: OpenSearch, record: PipelineConfig, passage: PipelineConfig, minilm: Embedder
) -> None:
    question = questions()[0]["question"]
    for mode in (Mode.KNN, Mode.NEURAL, Mode.HYBRID):
        # When the passage layout is searched
        response = run_search(client, passage, question, k=5, mode=mode, query_vector=query_vector(minilm))
        hits = hits_of(response, passage)
        # Then each hit is a record (its parent_id), once, with its best passages
        check_documents(hits)
        assert all(
            raw["_id"].startswith(f"{hit.doc_id}#")
            for raw, hit in zip(response["hits"]["hits"], hits, strict=True)
        )
    # And knn ranks the records as the record layout does: the same vectors, a record as its best passage
    by_passage = hits_of(
        run_search(client, passage, question, k=5, query_vector=query_vector(minilm)), passage
    )
    by_record = hits_of(run_search(client, record, question, k=5, query_vector=query_vector(minilm)), record)
    assert by_passage[0].doc_id == by_record[0].doc_id
    assert by_passage[0].score == pytest.approx(by_record[0].score, abs=1e-4)


def test_the_terminal_shows_the_best_passage_and_json_the_raw_response(
    client: OpenSearch, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "what compression level does a bz2 file use if I don't choose one?"
    capsys.readouterr()
    # When `osbatch search` runs on the record layout
    assert main(["--pipelines", str(RECORD), "search", question, "--pipeline", "long-search", "-k", "3"]) == 0
    out = capsys.readouterr().out
    # Then each hit shows its best passage and where it lies in the document
    assert out.count("[chars ") == 3
    # And --json prints OpenSearch's response as it came, inner hits included
    assert main(["--pipelines", str(RECORD), "search", question, "--pipeline", "long-search", "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert all("best_passages" in hit["inner_hits"] for hit in raw["hits"]["hits"])


def test_embedding_enrichment_and_an_answer_work_on_the_record_layout(
    client: OpenSearch, record: PipelineConfig, minilm: Embedder
) -> None:
    question = "what compression level does a bz2 file use if I don't choose one?"
    # When the record layout is searched through the title-embedding pipeline
    enriched = run_search(
        client,
        record,
        question,
        k=3,
        query_vector=query_vector(minilm),
        search_pipeline="long-title-embedding",
    )
    # Then each hit carries its title's vector, the local MiniLM's
    for hit in enriched["hits"]["hits"]:
        vector = np.asarray(hit["_source"]["title_embedding"])
        assert float(vector @ minilm.embed([hit["_source"]["title"]])[0]) >= 0.99
        assert "embedding" not in hit["_source"]["passages"][0]  # the passage vectors stay out
    # And through the answer pipeline, ext holds an answer made of the hits' passage text
    answered = run_search(
        client, record, question, k=3, query_vector=query_vector(minilm), search_pipeline="long-answer"
    )
    answer = answered["ext"]["ml_inference"]["llm_response"]
    assert answer.startswith(EXTRACTIVE_LABEL)
    passages = [p["text"].strip() for hit in answered["hits"]["hits"] for p in hit["_source"]["passages"]]
    assert any(text in answer.removeprefix(EXTRACTIVE_LABEL) for text in passages if text)


def test_a_rerank_scores_each_document_by_its_best_passage(
    client: OpenSearch, passage: PipelineConfig, minilm: Embedder
) -> None:
    question = "what compression level does a bz2 file use if I don't choose one?"
    plain = run_search(client, passage, question, k=5, query_vector=query_vector(minilm))
    # When the passage layout is searched through the rerank pipeline
    reranked = run_search(
        client, passage, question, k=5, query_vector=query_vector(minilm), search_pipeline="long-rerank"
    )
    # Then the records are the same, each scored by the similarity model on its best passage's text
    assert {hit["_id"] for hit in reranked["hits"]["hits"]} == {hit["_id"] for hit in plain["hits"]["hits"]}
    query_vec = minilm.embed([question])[0]
    scores = []
    for hit in reranked["hits"]["hits"]:
        expected = float(minilm.embed([hit["_source"]["text"]])[0] @ query_vec)
        assert hit["_score"] == pytest.approx(expected, abs=0.01)
        assert "rank_score" not in hit["_source"]
        scores.append(hit["_score"])
    assert scores == sorted(scores, reverse=True)
