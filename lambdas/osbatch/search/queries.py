"""The search request bodies of `osbatch search`: k-NN, neural and hybrid, with embeddings left out of hits.

- knn: the caller embeds the query with the pipeline's model and sends the vector;
- neural: the node embeds the query text itself, through the registered model (neural-search);
- hybrid: BM25 on the text field and the vector query, scored through the pipeline's hybrid search
  pipeline (neural-search's normalization processor), so exact terms and meaning both count.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from osbatch.config import PipelineConfig

# `osbatch search --search-pipeline` puts the query text here, where a processor's input_map can read it
# as `$._request.ext.ml_inference.query_text` whatever the query type: neural-search rewrites a neural
# query into a knn query of vectors before response processors see the request.
QUERY_TEXT_EXT = ("ext", "ml_inference", "query_text")


class Mode(StrEnum):
    KNN = "knn"
    NEURAL = "neural"
    HYBRID = "hybrid"


def vector_field(config: PipelineConfig) -> str:
    if config.search.vector_field:
        return config.search.vector_field
    properties = config.sink.mapping.get("mappings", {}).get("properties", {})
    for name, spec in properties.items():
        if isinstance(spec, dict) and spec.get("type") == "knn_vector":
            return str(name)
    raise ValueError(f"pipeline {config.name}: the index mapping has no knn_vector field to search")


def vector_query(
    config: PipelineConfig,
    *,
    k: int,
    vector: Sequence[float] | None = None,
    model_id: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A knn query when a vector is given, else a neural query the node embeds with model_id."""
    field = vector_field(config)
    if vector is not None:
        return {"knn": {field: {"vector": list(vector), "k": k}}}
    if model_id is None or text is None:
        raise ValueError("a neural query needs the query text and the id of the model that embeds it")
    return {"neural": {field: {"query_text": text, "model_id": model_id, "k": k}}}


def search_body(
    config: PipelineConfig,
    mode: Mode,
    text: str,
    *,
    k: int,
    vector: Sequence[float] | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    if mode is Mode.KNN and vector is None:
        raise ValueError("knn mode needs the query vector")
    semantic = vector_query(
        config, k=k, vector=vector if mode is not Mode.NEURAL else None, model_id=model_id, text=text
    )
    if mode is Mode.HYBRID:
        lexical = {"match": {config.search.text_field: {"query": text}}}
        query: dict[str, Any] = {"hybrid": {"queries": [lexical, semantic]}}
    else:
        query = semantic
    return {"size": k, "query": query, "_source": {"excludes": [vector_field(config)]}}
