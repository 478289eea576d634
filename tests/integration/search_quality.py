"""Retrieval quality on the sample: recall@k of knn, neural and hybrid search, and HNSW against exact search.

The queries and their known answers are in tests/fixtures/search_queries.jsonl: paraphrases of one
sample record each, and a few that name the function itself, where BM25's exact terms should help.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensearchpy import helpers

from cli.search import run_search
from local.paths import REPO_ROOT
from osbatch.config import PipelineConfig
from osbatch.search.queries import Mode, vector_field

QUERIES = REPO_ROOT / "tests" / "fixtures" / "search_queries.jsonl"
SAMPLE = REPO_ROOT / "samples" / "python-docs"


@dataclass(frozen=True)
class Query:
    text: str
    answer: str


def load_queries(path: Path = QUERIES) -> list[Query]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Query(row["query"], row["answer"]) for row in rows]


def sample_records() -> Iterator[dict[str, Any]]:
    """The sample's valid records; its deliberately bad lines are skipped as ingest would."""
    for path in sorted(SAMPLE.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("_id") and isinstance(record.get("text"), str):
                yield record


def index_sample(
    client: Any, config: PipelineConfig, embedder: Any, records: Iterable[dict[str, Any]]
) -> int:
    """Index records as the pipeline would: text in the text field, MiniLM vectors in the vector field."""
    rows = list(records)
    vectors = embedder.embed([row["text"] for row in rows])
    field, text_field = vector_field(config), config.search.text_field
    actions = (
        {
            "_index": config.sink.index,
            "_id": row["_id"],
            "_source": {
                text_field: row["text"],
                "title": row.get("title", row["_id"]),
                field: vector.tolist(),
            },
        }
        for row, vector in zip(rows, vectors, strict=True)
    )
    indexed, _ = helpers.bulk(client, actions, chunk_size=500, refresh="wait_for")
    return int(indexed)


def recall(
    client: Any, config: PipelineConfig, queries: list[Query], mode: Mode, embedder: Any, k: int = 10
) -> float:
    """The share of queries whose answer is in the top k; knn queries embedded by `embedder` (MiniLM)."""
    found = 0
    for query in queries:
        response = run_search(
            client, config, query.text, k=k, mode=mode, query_vector=lambda text: _vector(embedder, text)
        )
        found += query.answer in {hit["_id"] for hit in response["hits"]["hits"]}
    return found / len(queries)


def hnsw_recall(
    client: Any, config: PipelineConfig, queries: list[Query], embedder: Any, k: int = 10
) -> float:
    """Mean overlap of the HNSW top k with the exact top k (script_score over every document)."""
    field = vector_field(config)
    overlaps = []
    for query in queries:
        vector = _vector(embedder, query.text)
        approximate = client.search(
            index=config.sink.index,
            body={"size": k, "_source": False, "query": {"knn": {field: {"vector": vector, "k": k}}}},
        )
        exact = client.search(
            index=config.sink.index,
            body={
                "size": k,
                "_source": False,
                "query": {
                    "script_score": {
                        "query": {"match_all": {}},
                        "script": {
                            "source": "knn_score",
                            "lang": "knn",
                            "params": {"field": field, "query_value": vector, "space_type": _space(config)},
                        },
                    }
                },
            },
        )
        top = {hit["_id"] for hit in exact["hits"]["hits"]}
        overlaps.append(len(top & {hit["_id"] for hit in approximate["hits"]["hits"]}) / len(top))
    return sum(overlaps) / len(overlaps)


def _vector(embedder: Any, text: str) -> list[float]:
    return [float(x) for x in embedder.embed([text])[0]]


def _space(config: PipelineConfig) -> str:
    spec = config.sink.mapping["mappings"]["properties"][vector_field(config)]
    return str(spec.get("method", {}).get("space_type") or spec.get("space_type") or "l2")
