"""`osbatch search` and `osbatch setup`: thin wrappers over osbatch.search, for the local node or AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from osbatch.backends.query_vectors import ClientFactory, QueryEmbedder, backend_query_embedder
from osbatch.config import Backend, PipelineConfig
from osbatch.contracts import DOC_FIELDS
from osbatch.search.layout import (
    PARENT_ID,
    PASSAGE_END,
    PASSAGE_START,
    PASSAGE_TEXT,
    LayoutKind,
    search_layout,
)
from osbatch.search.ml import MlCommons
from osbatch.search.provision import hybrid_pipeline_name
from osbatch.search.queries import BEST_PASSAGES, BEST_PASSAGES_BY_TEXT, QUERY_TEXT_EXT, Mode, search_body

TEXT_FIELDS = ("chunk", "text", "passage_text", "review", "diary")


class SearchSetupError(RuntimeError):
    """The search cannot run as asked; the message says what to set up first."""


@dataclass(frozen=True)
class PassageHit:
    """One of a long document's best passages: its text and character offsets in the record's text."""

    text: str
    start: int | None
    end: int | None
    score: float


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    title: str
    text: str
    extra: dict[str, Any]
    passages: tuple[PassageHit, ...] = ()  # best first; empty for an index without passages


# Batch backends whose jobs run on the local MiniLM in the local runtime, so it embeds their queries there.
LOCAL_MODEL_BACKENDS = frozenset({Backend.SAGEMAKER, Backend.ML_COMMONS})


def query_embedder(
    config: PipelineConfig, client: ClientFactory, *, local_model: QueryEmbedder | None = None
) -> QueryEmbedder | None:
    """How a knn query gets its vector from the model that embedded the documents, or None: then the
    node's query_model does it (run_search).

    The backend's real-time API with the batch job's own model and output size (Bedrock InvokeModel,
    OpenAI embeddings: osbatch/backends/query_vectors.py); else, in the local runtime (local_model given),
    the local MiniLM for the backends whose jobs run on it there.
    """
    embedder = backend_query_embedder(config, client)
    if embedder is None and local_model is not None and config.inference.backend in LOCAL_MODEL_BACKENDS:
        return local_model
    return embedder


def run_search(
    client: Any,
    config: PipelineConfig,
    query: str,
    *,
    k: int = 10,
    mode: Mode = Mode.KNN,
    search_pipeline: str | None = None,
    query_vector: QueryEmbedder | None = None,
) -> dict[str, Any]:
    """The raw search response of one query in `mode`, through `search_pipeline` if given.

    query_vector embeds the query with the model that embedded the documents (the backend's real-time
    API, or locally the local model; query_embedder below). Without one, the vector modes fall back to
    the pipeline's query_model, which the node runs (a neural clause), and say what to configure if
    there is none either.
    """
    if mode is Mode.HYBRID and search_pipeline is not None:
        raise SearchSetupError(
            "hybrid search runs through the pipeline's own hybrid search pipeline; "
            "a request takes one search pipeline, so drop --search-pipeline"
        )
    model_id = None
    by_node = mode is Mode.NEURAL or (mode is Mode.HYBRID and config.search.query_model)
    if by_node or query_vector is None:
        model_id = _query_model_id(client, config, mode)
    vector = query_vector(query) if model_id is None and query_vector is not None else None
    # knn without a client-side embedder is the node's embedding: a neural clause with the query model
    clause = Mode.NEURAL if mode is Mode.KNN and vector is None else mode
    body = search_body(
        config, clause, query, k=k, vector=vector, model_id=model_id, keep_passages=bool(search_pipeline)
    )
    if search_pipeline:
        ext, namespace, key = QUERY_TEXT_EXT
        body[ext] = {namespace: {key: query}}
    pipeline = hybrid_pipeline_name(config) if mode is Mode.HYBRID else search_pipeline
    params = {"search_pipeline": pipeline} if pipeline else None
    response: dict[str, Any] = client.search(index=config.sink.index, body=body, params=params)
    return response


def _query_model_id(client: Any, config: PipelineConfig, mode: Mode) -> str:
    name = config.search.query_model
    if name is None:
        if mode is Mode.NEURAL:
            raise SearchSetupError(
                f"pipeline {config.name}: neural search needs search.query_model in its config"
            )
        raise SearchSetupError(
            f"pipeline {config.name}: {mode.value} search needs the query embedded by the model that "
            f"embedded the documents, and its {config.inference.backend.value} backend has no real-time "
            "API osbatch can call for that. Set search.query_model to a text_embedding model in models: "
            "(e.g. a remote SageMaker endpoint or Bedrock model serving the batch model) and run "
            f"`osbatch setup --pipeline {config.name}`"
        )
    found = MlCommons(client).find_model(name)
    if found is None:
        raise SearchSetupError(
            f"model {name} is not registered; run `osbatch setup --pipeline {config.name}`"
        )
    return str(found["model_id"])


def semantic_search(
    client: Any, config: PipelineConfig, query: str, k: int = 5, *, query_vector: QueryEmbedder | None = None
) -> list[Hit]:
    return hits_of(run_search(client, config, query, k=k, query_vector=query_vector), config)


def hits_of(response: dict[str, Any], config: PipelineConfig) -> list[Hit]:
    layout = search_layout(config)
    # the vectors, and osbatch's own bookkeeping (osbatch.incremental)
    hidden = {layout.vector_field, layout.nested_path, *DOC_FIELDS}
    hits = []
    for hit in response["hits"]["hits"]:
        source = dict(hit.get("_source", {}))
        passages = _passages(hit)
        doc_id = str(hit["_id"])
        if layout.kind is LayoutKind.PASSAGE:  # the collapsed hit is its record's best passage
            doc_id = str(source.pop(PARENT_ID, doc_id))
            for key in (PASSAGE_TEXT, PASSAGE_START, PASSAGE_END):
                source.pop(key, None)
        text_key = next((key for key in (config.search.text_field, *TEXT_FIELDS) if key in source), None)
        text = str(source.pop(text_key, "")) if text_key else ""
        title = str(source.pop("title", doc_id))
        extra = {key: value for key, value in source.items() if key not in hidden}
        hits.append(Hit(doc_id, float(hit.get("_score") or 0.0), title, text, extra, passages))
    return hits


def _passages(hit: dict[str, Any]) -> tuple[PassageHit, ...]:
    """The hit's best passages: the vector clause's inner hits, else hybrid's BM25 clause's."""
    inner = hit.get("inner_hits") or {}
    for name in (BEST_PASSAGES, BEST_PASSAGES_BY_TEXT):
        found = inner.get(name, {}).get("hits", {}).get("hits", [])
        if found:
            return tuple(_passage(passage) for passage in found)
    return ()


def _passage(inner: dict[str, Any]) -> PassageHit:
    source = inner.get("_source") or {}
    start, end = source.get(PASSAGE_START), source.get(PASSAGE_END)
    return PassageHit(
        str(source.get(PASSAGE_TEXT, "")),
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        float(inner.get("_score") or 0.0),
    )


def print_hits(hits: list[Hit], width: int = 100) -> None:
    if not hits:
        print("  (no hits)")
    for rank, hit in enumerate(hits, start=1):
        print(f"  {rank}. [{hit.score:.3f}] {hit.title}")
        if hit.passages:  # a long document: its best passage, where it lies in the record's text
            best = hit.passages[0]
            where = f"chars {best.start}-{best.end}" if best.start is not None else "passage"
            print(f"     [{where}] {_clip(' '.join(best.text.split()), width)}")
        else:
            print(f"     {_clip(hit.text, width)}")
        for key, value in hit.extra.items():
            print(f"     {key}: {_short(value, width)}")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_response(response: dict[str, Any], config: PipelineConfig, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(response, indent=2))
        return
    print_hits(hits_of(response, config))
    for key, value in (response.get("ext", {}).get("ml_inference") or {}).items():
        print(f"  ext.ml_inference.{key}: {_short(value, 400)}")


def _short(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"
