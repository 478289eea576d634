"""The search request bodies of `osbatch search`: k-NN, neural and hybrid, with embeddings left out of hits.

- knn: the caller embeds the query with the pipeline's model and sends the vector;
- neural: the node embeds the query text itself, through the registered model (neural-search);
- hybrid: BM25 on the text field and the vector query, scored through the pipeline's hybrid search
  pipeline (neural-search's normalization processor), so exact terms and meaning both count.

Over long documents (search/layout.py) every mode returns records, not passages:
- record layout: each clause is a `nested` query on the passages with `score_mode: max`, so a record
  scores as its best passage, and `inner_hits` bring back the best passages' text and offsets, best first
  (k-NN "Nested field search": `expand_nested_docs` scores every passage of a hit, not only the nearest;
  https://docs.opensearch.org/latest/vector-search/specialized-operations/nested-search-knn/). Hybrid's
  BM25 side is a nested match on the passage text ("Using inner hits in hybrid queries", OpenSearch 3.0+,
  https://docs.opensearch.org/latest/vector-search/ai-search/hybrid-search/inner-hits/); the two clauses'
  inner hits carry different names, as a request needs.
- passage layout: the query finds passages, `collapse` on `parent_id` keeps each record's best one as the
  hit, and its `inner_hits` list the record's best passages ("Collapse search results",
  https://docs.opensearch.org/latest/search-plugins/collapse-search/). The vector query asks for more
  passages than records wanted (PASSAGES_PER_RECORD), since several may belong to one record.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from osbatch.config import PipelineConfig
from osbatch.search.layout import PARENT_ID, PASSAGE_FIELDS, LayoutKind, SearchLayout, search_layout

# `osbatch search --search-pipeline` puts the query text here, where a processor's input_map can read it
# as `$._request.ext.ml_inference.query_text` whatever the query type: neural-search rewrites a neural
# query into a knn query of vectors before response processors see the request.
QUERY_TEXT_EXT = ("ext", "ml_inference", "query_text")
# The inner hits of a long-document search: the vector clause's best passages (and the collapsed passage
# layout's), and hybrid's BM25 clause's, named apart because one request may not use a name twice.
BEST_PASSAGES = "best_passages"
BEST_PASSAGES_BY_TEXT = "best_passages_by_text"
INNER_HITS_SIZE = 3
# Passage layout: nearest passages asked for per record wanted, so that k records survive the collapse
# when a record's passages crowd the nearest ones. k-NN's k is at most 10,000 (the k-NN query page).
PASSAGES_PER_RECORD = 10
MAX_K = 10_000


class Mode(StrEnum):
    KNN = "knn"
    NEURAL = "neural"
    HYBRID = "hybrid"


def vector_field(config: PipelineConfig) -> str:
    """The knn_vector field a query names, by its full path (`passages.embedding` in the record layout)."""
    return search_layout(config).vector_field


def vector_query(
    config: PipelineConfig,
    *,
    k: int,
    vector: Sequence[float] | None = None,
    model_id: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A knn query when a vector is given, else a neural query the node embeds with model_id; wrapped in
    a nested query in the record layout."""
    layout = search_layout(config)
    if layout.kind is LayoutKind.PASSAGE:
        k = min(k * PASSAGES_PER_RECORD, MAX_K)
    field = layout.vector_field
    if vector is not None:
        clause: dict[str, Any] = {"knn": {field: {"vector": list(vector), "k": k}}}
    elif model_id is None or text is None:
        raise ValueError("a neural query needs the query text and the id of the model that embeds it")
    else:
        clause = {"neural": {field: {"query_text": text, "model_id": model_id, "k": k}}}
    if layout.kind is not LayoutKind.RECORD:
        return clause
    (kind,) = clause
    clause[kind][field]["expand_nested_docs"] = True  # score every passage of a hit, for its inner hits
    return _nested(layout, clause, BEST_PASSAGES)


def text_query(config: PipelineConfig, text: str) -> dict[str, Any]:
    """Hybrid's BM25 clause: on the passage text, nested in the record layout."""
    layout = search_layout(config)
    match = {"match": {layout.text_field: {"query": text}}}
    if layout.kind is LayoutKind.RECORD and layout.text_field.startswith(f"{layout.nested_path}."):
        return _nested(layout, match, BEST_PASSAGES_BY_TEXT)
    return match


def _nested(layout: SearchLayout, query: dict[str, Any], inner_hits: str) -> dict[str, Any]:
    passage_source = [layout.passage_field(name) for name in PASSAGE_FIELDS]
    return {
        "nested": {
            "path": layout.nested_path,
            "query": query,
            "score_mode": "max",  # a record scores as its best passage
            "inner_hits": {"name": inner_hits, "size": INNER_HITS_SIZE, "_source": passage_source},
        }
    }


def search_body(
    config: PipelineConfig,
    mode: Mode,
    text: str,
    *,
    k: int,
    vector: Sequence[float] | None = None,
    model_id: str | None = None,
    keep_passages: bool = False,
) -> dict[str, Any]:
    """The request body. Record layout: the hits' `_source` leaves the passages out (their best ones come
    as inner hits) unless keep_passages, for a search pipeline whose processors read `_source` only."""
    if mode is Mode.KNN and vector is None:
        raise ValueError("knn mode needs the query vector")
    layout = search_layout(config)
    semantic = vector_query(
        config, k=k, vector=vector if mode is not Mode.NEURAL else None, model_id=model_id, text=text
    )
    if mode is Mode.HYBRID:
        query: dict[str, Any] = {"hybrid": {"queries": [text_query(config, text), semantic]}}
    else:
        query = semantic
    hidden = layout.nested_path if layout.nested_path and not keep_passages else layout.vector_field
    body: dict[str, Any] = {"size": k, "query": query, "_source": {"excludes": [hidden]}}
    if layout.kind is LayoutKind.PASSAGE:
        body["collapse"] = {
            "field": PARENT_ID,
            "inner_hits": {
                "name": BEST_PASSAGES,
                "size": INNER_HITS_SIZE,
                "sort": [{"_score": "desc"}],
                "_source": list(PASSAGE_FIELDS),
            },
        }
    return body
