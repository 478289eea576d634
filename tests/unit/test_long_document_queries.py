"""`osbatch search` over long documents: the request bodies of each layout and how hits are read.

The same queries run on the local node in tests/integration/test_long_document_search.py; here, the
shapes of OpenSearch's pages ("Nested field search", "Using inner hits in hybrid queries", "Collapse search
results") are checked without a node.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cli.search import hits_of, print_hits, run_search
from osbatch.config import PipelineConfig, load_pipeline
from osbatch.search.layout import LayoutKind, search_layout
from osbatch.search.queries import (
    BEST_PASSAGES,
    BEST_PASSAGES_BY_TEXT,
    PASSAGES_PER_RECORD,
    Mode,
    search_body,
)
from tests.unit.helpers import REPO, pipeline_dict

RECORD_LAYOUT = REPO / "pipelines" / "python-modules.yaml"
VECTOR = [0.1] * 384


def record_config() -> PipelineConfig:
    return load_pipeline(RECORD_LAYOUT)


def passage_config() -> PipelineConfig:
    properties = {
        "parent_id": {"type": "keyword"},
        "text": {"type": "text"},
        "start": {"type": "integer"},
        "end": {"type": "integer"},
        "embedding": {"type": "knn_vector", "dimension": 384},
    }
    data = pipeline_dict()
    data["sink"] = {
        **data["sink"],
        "mapping": {"settings": {"index.knn": True}, "mappings": {"properties": properties}},
        "field_map": {"_id": "$._id"},
    }
    return PipelineConfig.model_validate(data)


def test_each_layout_is_read_from_the_mapping() -> None:
    # Given the nested mapping of the record layout, the parent_id mapping of the passage layout, a flat one
    record, passage = search_layout(record_config()), search_layout(passage_config())
    flat_data = pipeline_dict()
    flat_data["sink"]["mapping"] = {
        "mappings": {"properties": {"chunk_embedding": {"type": "knn_vector", "dimension": 384}}}
    }
    flat = search_layout(PipelineConfig.model_validate(flat_data))
    # Then each is recognised, with the full paths a query names
    assert (record.kind, record.vector_field, record.text_field) == (
        LayoutKind.RECORD,
        "passages.embedding",
        "passages.text",
    )
    assert record.nested_path == "passages"
    assert (passage.kind, passage.vector_field, passage.text_field) == (
        LayoutKind.PASSAGE,
        "embedding",
        "text",
    )
    assert (flat.kind, flat.vector_field, flat.nested_path) == (LayoutKind.FLAT, "chunk_embedding", None)


def test_record_layout_knn_is_a_nested_query_scored_by_the_best_passage() -> None:
    # When a record-layout index is searched in knn mode
    body = search_body(record_config(), Mode.KNN, "gzip", k=5, vector=VECTOR)
    # Then the knn query is nested on the passages, a record scoring as its best passage
    nested = body["query"]["nested"]
    assert nested["path"] == "passages"
    assert nested["score_mode"] == "max"
    knn = nested["query"]["knn"]["passages.embedding"]
    assert knn["vector"] == VECTOR and knn["k"] == 5
    # And every passage of a hit is scored, so its inner hits are its best passages with text and offsets
    assert knn["expand_nested_docs"] is True
    assert nested["inner_hits"] == {
        "name": BEST_PASSAGES,
        "size": 3,
        "_source": ["passages.text", "passages.start", "passages.end"],
    }
    # And the hits' own _source leaves the passages out (vectors and all), and k records are asked for
    assert body["_source"] == {"excludes": ["passages"]} and body["size"] == 5


def test_record_layout_neural_and_hybrid_are_nested_too() -> None:
    config = record_config()
    # When searched in neural mode, the node embeds the query for the nested vector field
    neural = search_body(config, Mode.NEURAL, "gzip", k=4, model_id="m-1")["query"]["nested"]
    assert neural["query"]["neural"]["passages.embedding"]["query_text"] == "gzip"
    assert neural["query"]["neural"]["passages.embedding"]["model_id"] == "m-1"
    # And in hybrid mode BM25 matches the passage text, nested, beside the nested vector query
    lexical, semantic = search_body(config, Mode.HYBRID, "gzip", k=4, vector=VECTOR)["query"]["hybrid"][
        "queries"
    ]
    assert lexical["nested"]["query"] == {"match": {"passages.text": {"query": "gzip"}}}
    assert lexical["nested"]["score_mode"] == "max"
    assert "knn" in semantic["nested"]["query"]
    # With two inner hits of different names, as one request requires
    names = {lexical["nested"]["inner_hits"]["name"], semantic["nested"]["inner_hits"]["name"]}
    assert names == {BEST_PASSAGES, BEST_PASSAGES_BY_TEXT}


def test_a_search_pipeline_keeps_the_passage_text_its_processors_read() -> None:
    # When a record-layout search runs through a search pipeline (its processors read _source only)
    body = search_body(record_config(), Mode.KNN, "gzip", k=5, vector=VECTOR, keep_passages=True)
    # Then only the vectors are left out of the hits
    assert body["_source"] == {"excludes": ["passages.embedding"]}


def test_passage_layout_collapses_on_the_record() -> None:
    # When a passage-layout index is searched
    body = search_body(passage_config(), Mode.KNN, "gzip", k=5, vector=VECTOR)
    # Then the nearest passages are collapsed on parent_id, a record's best passage being its hit
    assert body["collapse"]["field"] == "parent_id"
    inner = body["collapse"]["inner_hits"]
    assert inner["name"] == BEST_PASSAGES and inner["sort"] == [{"_score": "desc"}]
    assert inner["_source"] == ["text", "start", "end"]
    # And enough passages are asked for that k records survive the collapse
    assert body["query"]["knn"]["embedding"]["k"] == 5 * PASSAGES_PER_RECORD
    assert body["size"] == 5


def inner(text: str, start: int, end: int, score: float, relative: bool = True) -> dict[str, Any]:
    return {"_score": score, "_source": {"text": text, "start": start, "end": end}}


RECORD_RESPONSE: dict[str, Any] = {
    "hits": {
        "hits": [
            {
                "_id": "gzip",
                "_score": 0.9,
                "_source": {"title": "gzip"},
                "inner_hits": {
                    BEST_PASSAGES: {
                        "hits": {
                            "hits": [
                                inner("mtime is the modification time", 4100, 4900, 0.9),
                                inner("compresslevel", 200, 900, 0.7),
                            ]
                        }
                    }
                },
            }
        ]
    }
}


def test_a_record_layout_hit_is_the_document_with_its_best_passages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When a record-layout response is read
    (hit,) = hits_of(copy.deepcopy(RECORD_RESPONSE), record_config())
    # Then the hit is the document, its passages best first with their offsets
    assert (hit.doc_id, hit.title, hit.score) == ("gzip", "gzip", 0.9)
    assert [(p.start, p.end, p.score) for p in hit.passages] == [(4100, 4900, 0.9), (200, 900, 0.7)]
    # And the terminal shows the best passage and where it lies in the document
    print_hits([hit])
    out = capsys.readouterr().out
    assert "[chars 4100-4900] mtime is the modification time" in out
    assert "compresslevel" not in out


def test_hybrid_hits_fall_back_to_the_bm25_clauses_passages() -> None:
    # Given a hybrid hit found by its words only (the vector clause brought no inner hits)
    response = copy.deepcopy(RECORD_RESPONSE)
    hit = response["hits"]["hits"][0]
    hit["inner_hits"] = {
        BEST_PASSAGES: {"hits": {"hits": []}},
        BEST_PASSAGES_BY_TEXT: {"hits": {"hits": [inner("the words", 10, 20, 3.5)]}},
    }
    # Then its best passage is the one BM25 matched
    (read,) = hits_of(response, record_config())
    assert [(p.text, p.start) for p in read.passages] == [("the words", 10)]


def test_a_passage_layout_hit_is_its_record() -> None:
    # Given a collapsed passage-layout response: the hit is the record's best passage
    best = {"parent_id": "gzip", "text": "mtime", "start": 4100, "end": 4900}
    response = {
        "hits": {
            "hits": [
                {
                    "_id": "gzip#7",
                    "_score": 0.9,
                    "_source": best,
                    "inner_hits": {BEST_PASSAGES: {"hits": {"hits": [inner("mtime", 4100, 4900, 0.9)]}}},
                }
            ]
        }
    }
    # When it is read, the hit names the record, not the passage
    (hit,) = hits_of(response, passage_config())
    assert hit.doc_id == "gzip" and hit.extra == {}
    assert hit.passages[0].start == 4100


class Recording:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def search(self, *, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.bodies.append(body)
        return {"hits": {"hits": []}}


def test_run_search_keeps_passages_only_for_a_search_pipeline() -> None:
    # Given a record-layout pipeline and a client-side query embedder
    client, config = Recording(), record_config()
    # When searched plainly and through a search pipeline
    run_search(client, config, "gzip", k=3, query_vector=lambda text: VECTOR)
    run_search(client, config, "gzip", k=3, query_vector=lambda text: VECTOR, search_pipeline="rerank")
    # Then the plain search leaves the passages out of _source, the pipeline's keeps their text
    assert [body["_source"]["excludes"] for body in client.bodies] == [["passages"], ["passages.embedding"]]
