"""Semantic search over a pipeline's index, embedding the query with the same model as the documents."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from osbatch.config import PipelineConfig


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    title: str
    text: str


def vector_field(config: PipelineConfig) -> str:
    properties = config.sink.mapping.get("mappings", {}).get("properties", {})
    for name, spec in properties.items():
        if isinstance(spec, dict) and spec.get("type") == "knn_vector":
            return str(name)
    raise ValueError(f"pipeline {config.name}: the index mapping has no knn_vector field to search")


@lru_cache(maxsize=1)
def _embedder() -> Any:
    from local.model.embedder import OnnxSentenceEmbedder

    return OnnxSentenceEmbedder.default()


def semantic_search(client: Any, config: PipelineConfig, query: str, k: int = 5) -> list[Hit]:
    vector = _embedder().embed([query])[0].tolist()
    field = vector_field(config)
    body = {
        "size": k,
        "query": {"knn": {field: {"vector": vector, "k": k}}},
        "_source": {"excludes": [field]},
    }
    response = client.search(index=config.sink.index, body=body)
    return [
        Hit(
            doc_id=hit["_id"],
            score=float(hit["_score"]),
            title=str(hit["_source"].get("title", hit["_id"])),
            text=str(hit["_source"].get("chunk", hit["_source"].get("text", ""))),
        )
        for hit in response["hits"]["hits"]
    ]


def print_hits(hits: list[Hit], width: int = 100) -> None:
    if not hits:
        print("  (no hits)")
    for rank, hit in enumerate(hits, start=1):
        text = hit.text if len(hit.text) <= width else hit.text[: width - 1] + "…"
        print(f"  {rank}. [{hit.score:.3f}] {hit.title}\n     {text}")
