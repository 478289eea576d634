"""Ingest into the real local OpenSearch node: osbatch's ingest_chunk against the node's own limit.

Contenders, each into a fresh index (384-dim lucene HNSW, refresh -1, 0 replicas, as osbatch loads a new
index), over the same file of SageMaker-shaped lines:
- blaster: pre-serialized `_bulk` bodies (no parsing or mapping at all) sent at each batch size and
  concurrency of a small sweep; its best is the node's limit.
- osbatch: ingest_chunk reading the file (LocalFiles), parsing, mapping, batching and bulk-writing, at the
  blaster's best concurrency.
- helpers.bulk: `opensearchpy.helpers.bulk` with its defaults over the parsed lines.
Then peak RSS of osbatch's ingest of files of growing size, each in its own process.

    OSBATCH_OPENSEARCH_PORT=9203 .venv/bin/python bench/ingest.py --node [--records 200000]
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

import orjson  # noqa: E402
from opensearchpy import OpenSearch, helpers  # noqa: E402

from osbatch.config import BulkConfig  # noqa: E402
from osbatch.ingest.chunk import IngestTarget, ingest_chunk  # noqa: E402
from osbatch.ingest.dead_letter import DeadLetterWriter  # noqa: E402
from osbatch.ingest.field_map import FieldMapper  # noqa: E402
from osbatch.ingest.local_files import LocalFiles  # noqa: E402
from osbatch.ingest.models import IngestChunk  # noqa: E402
from osbatch.models import SourceObject  # noqa: E402
from osbatch.search.client import opensearch_client  # noqa: E402

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
SWEEP = [(2 * 2**20, 2), (8 * 2**20, 2), (8 * 2**20, 4)]  # (batch bytes, concurrency)


def write_file(path: Path, records: int) -> None:
    rng = random.Random(11)
    with path.open("wb") as out:
        for n in range(records):
            vector = [round(rng.uniform(-1, 1), 6) for _ in range(DIM)]
            out.write(
                orjson.dumps({"_id": str(n), "text": f"passage {n} " * 6, "SageMakerOutput": vector}) + b"\n"
            )


def fresh(client: OpenSearch, index: str) -> None:
    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, body=INDEX_BODY)


def settle(client: OpenSearch, index: str, records: int) -> None:
    client.indices.refresh(index=index)
    count = client.count(index=index)["count"]
    assert count == records, f"{index}: {count} documents, expected {records}"


def blaster(client: OpenSearch, index: str, path: Path, batch_bytes: int, concurrency: int) -> float:
    bodies, current, size = [], [], 0
    with path.open("rb") as lines:
        for line in lines:
            record = orjson.loads(line)
            action = orjson.dumps({"index": {"_id": record["_id"]}}) + b"\n"
            source = (
                orjson.dumps({"chunk": record["text"], "chunk_embedding": record["SageMakerOutput"]}) + b"\n"
            )
            if size + len(action) + len(source) > batch_bytes and current:
                bodies.append(b"".join(current))
                current, size = [], 0
            current += [action, source]
            size += len(action) + len(source)
    bodies.append(b"".join(current))
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for response in pool.map(lambda body: client.bulk(body=body, index=index), bodies):
            assert not response["errors"]
    return time.perf_counter() - start


def osbatch(client: OpenSearch, index: str, path: Path, concurrency: int) -> float:
    bulk = BulkConfig(concurrency=concurrency, relax_new_index=False)
    target = IngestTarget(FieldMapper(FIELD_MAP), index, bulk)
    chunk = IngestChunk(
        job_id="bench", pipeline="bench", source=SourceObject(bucket="file", key=str(path)),
        chunk=0, bucket="file", key=str(path), start=0, end=path.stat().st_size,
    )  # fmt: skip
    dead = DeadLetterWriter(LocalFiles(), str(path.parent), "dead.jsonl", job_id="bench", source=str(path))
    files = LocalFiles()

    class Reader:
        def get_object(self, *, Bucket: str, Key: str, Range: str) -> Any:
            return files.get_object(Bucket="", Key=Key, Range=Range)

        upload_fileobj = files.upload_fileobj
        delete_object = files.delete_object

    start = time.perf_counter()
    result = ingest_chunk(chunk, target=target, s3=Reader(), opensearch=client, dead_letters=lambda s: dead)
    elapsed = time.perf_counter() - start
    assert result.dead_lettered == 0, result
    return elapsed


def helpers_bulk(client: OpenSearch, index: str, path: Path) -> float:
    def actions() -> Any:
        with path.open("rb") as lines:
            for line in lines:
                record = json.loads(line)
                yield {"_index": index, "_id": record["_id"], "chunk": record["text"],
                       "chunk_embedding": record["SageMakerOutput"]}  # fmt: skip

    start = time.perf_counter()
    helpers.bulk(client, actions())
    return time.perf_counter() - start


def peak_rss_mb(url: str, index: str, path: Path) -> float:
    """osbatch's ingest of path in a fresh process: its peak resident set, in MB."""
    code = (
        "import resource, sys; sys.argv = ['x']; from pathlib import Path; import bench.ingest_node as b;"
        f"b.osbatch(b.opensearch_client({url!r}), {index!r}, Path({str(path)!r}), 2);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main(url: str, records: int, work: Path) -> None:
    client = opensearch_client(url, timeout=300)
    path = work / "bench-output.jsonl"
    write_file(path, records)
    mib = path.stat().st_size / 2**20
    print(f"{records} records, {mib:.0f} MiB, into {url} ({client.info()['version']['number']})")
    index = "bench-ingest"
    best = (0.0, SWEEP[0])
    for batch_bytes, concurrency in SWEEP:
        fresh(client, index)
        rate = records / blaster(client, index, path, batch_bytes, concurrency)
        settle(client, index, records)
        print(f"  blaster {batch_bytes >> 20} MiB x {concurrency}: {rate:8.0f} docs/s")
        best = max(best, (rate, (batch_bytes, concurrency)))
    blaster_rate, (_, concurrency) = best
    fresh(client, index)
    ours = records / osbatch(client, index, path, concurrency)
    settle(client, index, records)
    print(f"  osbatch (concurrency {concurrency}): {ours:8.0f} docs/s")
    fresh(client, index)
    theirs = records / helpers_bulk(client, index, path)
    settle(client, index, records)
    print(f"  helpers.bulk defaults: {theirs:8.0f} docs/s")

    small, large = work / "rss-small.jsonl", work / "rss-large.jsonl"
    write_file(small, max(1, records // 8))
    write_file(large, records // 2)
    rss = []
    for file in (small, large):
        fresh(client, index)
        rss.append(peak_rss_mb(url, index, file))
        print(f"  osbatch peak RSS on {file.stat().st_size / 2**20:.0f} MiB: {rss[-1]:.0f} MB")
    client.indices.delete(index=index, ignore_unavailable=True)

    verdict = {True: "PASS", False: "FAIL"}
    of_blaster, over_helpers, growth = ours / blaster_rate, ours / theirs, rss[1] / rss[0]
    print(f"osbatch vs blaster: {of_blaster:.0%} (target >= 90%): {verdict[of_blaster >= 0.9]}")
    print(f"osbatch vs helpers.bulk: {over_helpers:.1f}x (target >= 3x): {verdict[over_helpers >= 3]}")
    print(f"peak RSS growth over a 4x larger file: {growth:.2f}x (target <= 1.2x): {verdict[growth <= 1.2]}")
    print(f"peak RSS: {max(rss):.0f} MB (target <= 300 MB): {verdict[max(rss) <= 300]}")
    _ = resource  # imported for the child process' use of the same module
