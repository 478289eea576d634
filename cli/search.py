"""`osbatch search` and `osbatch setup`: thin wrappers over osbatch.search, for the local node or AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from osbatch.backends.query_vectors import ClientFactory, QueryEmbedder, backend_query_embedder
from osbatch.config import Backend, PipelineConfig
from osbatch.contracts import DOC_FIELDS
from osbatch.search.ml import MlCommons
from osbatch.search.provision import hybrid_pipeline_name
from osbatch.search.queries import QUERY_TEXT_EXT, Mode, search_body, vector_field

TEXT_FIELDS = ("chunk", "text", "passage_text", "review", "diary")


class SearchSetupError(RuntimeError):
    """The search cannot run as asked; the message says what to set up first."""


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    title: str
    text: str
    extra: dict[str, Any]


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
    body = search_body(config, clause, query, k=k, vector=vector, model_id=model_id)
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
    hidden = {vector_field(config), *DOC_FIELDS}  # osbatch's own bookkeeping (osbatch.incremental)
    hits = []
    for hit in response["hits"]["hits"]:
        source = dict(hit.get("_source", {}))
        text_key = next((key for key in (config.search.text_field, *TEXT_FIELDS) if key in source), None)
        text = str(source.pop(text_key, "")) if text_key else ""
        title = str(source.pop("title", hit["_id"]))
        extra = {key: value for key, value in source.items() if key not in hidden}
        hits.append(Hit(str(hit["_id"]), float(hit.get("_score") or 0.0), title, text, extra))
    return hits


def print_hits(hits: list[Hit], width: int = 100) -> None:
    if not hits:
        print("  (no hits)")
    for rank, hit in enumerate(hits, start=1):
        text = hit.text if len(hit.text) <= width else hit.text[: width - 1] + "…"
        print(f"  {rank}. [{hit.score:.3f}] {hit.title}\n     {text}")
        for key, value in hit.extra.items():
            print(f"     {key}: {_short(value, width)}")


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
