"""The writers bench/ingest_node.py races into the local node, and the file they all read.

Each contender gets the same file and a fresh index with the same settings; each returns how many
documents it sent. The file holds SageMaker-shaped output lines: an id, a passage, a 384-dim float32
vector printed as JSON doubles (what `json.dumps(tensor.tolist())` gives) and Prepare's line stamp.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from opensearchpy import OpenSearch, helpers

from osbatch.batch_ingestion.local_files import LocalFiles
from osbatch.config import BulkConfig
from osbatch.contracts import LINE_BITS
from osbatch.field_map import FieldMapper
from osbatch.ingest.chunk import IngestTarget, ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import SourceObject
from osbatch.models.ingest import Checkpoint, IngestChunk
from osbatch.search.client import opensearch_client

DIM = 384
FIELD_MAP = {"_id": "$._id", "chunk": "$.text", "chunk_embedding": "$.SageMakerOutput"}
INDEX_BODY = {
    "settings": {"index.knn": True, "number_of_replicas": 0, "refresh_interval": "-1", "number_of_shards": 1},
    "mappings": {
        "properties": {
            "chunk": {"type": "text"},
            "chunk_embedding": {
                "type": "knn_vector",
                "dimension": DIM,
                "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
            },
        }
    },
}


def record(number: int, vector: list[float]) -> dict[str, Any]:
    return {
        "_id": str(number),
        "text": f"passage {number} " * 6,
        "SageMakerOutput": vector,
        "_osbatch": {"line": number + 1},
    }


def write_file(path: Path, records: int, seed: int = 11) -> None:
    rng = np.random.default_rng(seed)
    with path.open("wb") as out:
        for start in range(0, records, 1000):
            vectors = rng.uniform(-1, 1, (min(1000, records - start), DIM)).astype(np.float32).tolist()
            out.writelines(
                orjson.dumps(record(start + n, vector), option=orjson.OPT_APPEND_NEWLINE)
                for n, vector in enumerate(vectors)
            )


def fresh(client: OpenSearch, index: str) -> None:
    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, body=INDEX_BODY)


def payloads(path: Path) -> list[bytes]:
    """Each document's action and source lines, serialized once, before any clock starts."""
    out = []
    with path.open("rb") as lines:
        for line in lines:
            source = orjson.loads(line)
            action = orjson.dumps({"index": {"_id": source["_id"]}}, option=orjson.OPT_APPEND_NEWLINE)
            body = {"chunk": source["text"], "chunk_embedding": source["SageMakerOutput"]}
            out.append(action + orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE))
    return out


def batches(docs: list[bytes], batch_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges of docs whose payloads add up to at most batch_bytes (at least one doc)."""
    cuts, start, size = [], 0, 0
    for n, payload in enumerate(docs):
        if size + len(payload) > batch_bytes and n > start:
            cuts.append((start, n))
            start, size = n, 0
        size += len(payload)
    cuts.append((start, len(docs)))
    return cuts


@dataclass(frozen=True)
class Blaster:
    """The node's limit: pre-serialized bodies, uncompressed, only `errors` asked back."""

    url: str
    docs: list[bytes]
    batch_bytes: int
    concurrency: int
    _client: OpenSearch = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_client", OpenSearch([self.url], timeout=600, pool_maxsize=8))

    @property
    def name(self) -> str:
        return f"blaster {self.batch_bytes / 2**20:g} MiB x {self.concurrency}"

    def run(self, index: str) -> int:
        def send(cut: tuple[int, int]) -> None:
            body = b"".join(self.docs[cut[0] : cut[1]])
            path = f"/{index}/_bulk"
            answer = self._client.transport.perform_request(
                "POST", path, body=body, params={"filter_path": "errors"}
            )
            assert answer == {"errors": False}, answer

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(send, batches(self.docs, self.batch_bytes)))
        return len(self.docs)


class MemoryProgress:
    """The job table's chunk item, in memory: ingest_chunk checkpoints as it does in Lambda."""

    def __init__(self) -> None:
        self.saved: list[Checkpoint] = []

    def load(self) -> Checkpoint | None:
        return None

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved.append(checkpoint)


def chunk_of(path: Path) -> IngestChunk:
    return IngestChunk(
        job_id="bench", pipeline="bench", source=SourceObject(bucket="file", key=str(path)),
        chunk=0, bucket=str(path.parent), key=path.name, start=0, end=path.stat().st_size,
        version_base=1 << LINE_BITS,  # as PlanIngest sets it: external versions, later lines win
    )  # fmt: skip


def run_osbatch(path: Path, client: Any, index: str, bulk: BulkConfig) -> int:
    """ingest_chunk as the ingest-chunk Lambda runs it: checkpoints, versions, dead letters to files."""
    files = LocalFiles()
    dead = DeadLetterWriter(files, str(path.parent), "dead.jsonl", job_id="bench", source=str(path))
    result = ingest_chunk(
        chunk_of(path),
        target=IngestTarget(FieldMapper(FIELD_MAP), index, bulk),
        s3=files,
        opensearch=client,
        dead_letters=lambda segment: dead,
        progress=MemoryProgress(),
    )
    assert result.dead_lettered == 0, result
    return result.indexed


@dataclass(frozen=True)
class Osbatch:
    url: str
    path: Path
    bulk: BulkConfig = field(default_factory=BulkConfig)  # the product's `sink.bulk` defaults
    name: str = "osbatch"

    def run(self, index: str) -> int:
        return run_osbatch(self.path, opensearch_client(self.url, timeout=600), index, self.bulk)


@dataclass(frozen=True)
class HelpersBulk:
    """`opensearchpy.helpers.bulk` with its defaults, on a default client, over stdlib-parsed lines."""

    url: str
    path: Path
    name: str = "helpers.bulk"

    def run(self, index: str) -> int:
        def actions() -> Iterator[dict[str, Any]]:
            with self.path.open("rb") as lines:
                for line in lines:
                    source = json.loads(line)
                    yield {"_index": index, "_id": source["_id"], "chunk": source["text"],
                           "chunk_embedding": source["SageMakerOutput"]}  # fmt: skip

        indexed, errors = helpers.bulk(OpenSearch([self.url], timeout=600), actions())
        assert not errors, errors
        return indexed
