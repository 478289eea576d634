"""Ingest into the real local OpenSearch node: osbatch's ingest_chunk against the node's own limit.

Every contender writes the same file into a fresh index with the same mapping and settings (384-dim lucene
HNSW, one shard, refresh -1, 0 replicas: what osbatch sets while it loads a new index):
- blaster: pre-serialized, uncompressed `_bulk` bodies, no parsing or mapping at all. A sweep over batch
  size and concurrency on a quarter of the records (at most 25k) picks its best setting in this run: the
  node's limit.
- osbatch: ingest_chunk as the Lambda runs it (read, parse, map, versioned bulk, checkpoints), with the
  product's client and `sink.bulk` defaults but for concurrency, which is the blaster's best.
- helpers.bulk: `opensearchpy.helpers.bulk` with its defaults.
Then rounds of blaster-best, osbatch, helpers.bulk, one after the other, each round starting one later
(ABC BCA CAB...), so that whatever else runs on the machine hits them all alike; ratios are per round,
reported as medians. Each run is checked: the document count, and a sample of documents whose vectors
must equal the source's.

Per run it prints docs/s, the client's CPU per document (this process, all threads: robust to the
shared machine) and the node's (its process CPU from _nodes/stats).

    OSBATCH_OPENSEARCH_PORT=9260 .venv/bin/python bench/ingest.py --node [--records 200000] [--rounds 3]
    .venv/bin/python bench/ingest.py --node --quick     # 10,000 records, 1 round
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson
from opensearchpy import OpenSearch

from bench.node_contenders import Blaster, HelpersBulk, Osbatch, fresh, payloads, write_file
from osbatch.config import BulkConfig

SWEEP = [(1 * 2**20, 2), (4 * 2**20, 2), (8 * 2**20, 2), (4 * 2**20, 3)]  # (batch bytes, concurrency)
INDEX = "bench-ingest"
SAMPLE = 25
SWEEP_RECORDS = 25_000


class Contender(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, index: str) -> int: ...


@dataclass(frozen=True)
class Run:
    name: str
    docs: int
    seconds: float
    client_cpu: float
    node_cpu: float
    load: float  # the machine's 1-minute load average when the run ended: how shared the 2 cores were

    @property
    def rate(self) -> float:
        return self.docs / self.seconds

    def describe(self) -> str:
        per_doc = 1e6 / self.docs
        return (
            f"  {self.name:24} {self.rate:7.0f} docs/s   client {self.client_cpu * per_doc:6.0f} us/doc"
            f"   node {self.node_cpu * per_doc:6.0f} us/doc ({self.node_cpu / self.seconds:.0%} of a core)"
            f"   load {self.load:.1f}"
        )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def node_cpu_seconds(client: OpenSearch) -> float:
    stats = client.nodes.stats(metric="process")
    return sum(node["process"]["cpu"]["total_in_millis"] for node in stats["nodes"].values()) / 1000


def check(client: OpenSearch, name: str, records: int, path: Path, sample: list[int]) -> None:
    """The index holds every record, and the sampled documents' vectors are the source's."""
    client.indices.refresh(index=INDEX)
    count = client.count(index=INDEX)["count"]
    assert count == records, f"{name}: {count} documents, expected {records}"
    wanted = set(sample)
    expected = {}
    with path.open("rb") as lines:
        for number, line in enumerate(lines):
            if number in wanted:
                expected[str(number)] = orjson.loads(line)["SageMakerOutput"]
    found = client.mget(index=INDEX, body={"ids": list(expected)})["docs"]
    for doc in found:
        assert doc["found"], f"{name}: document {doc['_id']} missing"
        # The k-NN plugin stores float32 and derives _source from it: equal as float32, bit for bit.
        vector = np.asarray(doc["_source"]["chunk_embedding"], dtype=np.float32)
        source = np.asarray(expected[doc["_id"]], dtype=np.float32)
        assert np.array_equal(vector, source), f"{name}: document {doc['_id']} has another vector"


def race(client: OpenSearch, contender: Contender, records: int, path: Path, sample: list[int]) -> Run:
    fresh(client, INDEX)
    node, cpu, wall = node_cpu_seconds(client), cpu_seconds(), time.perf_counter()
    docs = contender.run(INDEX)
    wall, cpu, node = time.perf_counter() - wall, cpu_seconds() - cpu, node_cpu_seconds(client) - node
    assert docs == records, f"{contender.name}: sent {docs} of {records}"
    check(client, contender.name, records, path, sample)
    run = Run(contender.name, docs, wall, cpu, node, os.getloadavg()[0])
    print(run.describe(), flush=True)
    return run


def main(url: str, records: int, rounds: int, work: Path) -> bool:
    """Print every run, the medians and their verdicts; whether every target was met."""
    client = OpenSearch([url], timeout=600)
    path, sweep_path = work / "bench-output.jsonl", work / "bench-sweep.jsonl"
    write_file(path, records)
    sweep_records = max(1, min(records // 4, SWEEP_RECORDS))
    write_file(sweep_path, sweep_records)
    rng = random.Random(7)
    sample, sweep_sample = rng.sample(range(records), min(SAMPLE, records)), [0, sweep_records - 1]
    print(
        f"{records} records ({path.stat().st_size / 2**20:.0f} MiB, 384-dim vectors) into {url} "
        f"(OpenSearch {client.info()['version']['number']})"
    )
    started = time.perf_counter()
    print(f"blaster sweep on {sweep_records} records:")
    sweep_docs = payloads(sweep_path)
    tried = [Blaster(url, sweep_docs, size, concurrency) for size, concurrency in SWEEP]
    swept = [race(client, blaster, sweep_records, sweep_path, sweep_sample) for blaster in tried]
    best = tried[max(range(len(swept)), key=lambda n: swept[n].rate)]
    del sweep_docs, tried
    blaster = Blaster(url, payloads(path), best.batch_bytes, best.concurrency)
    # The product's `sink.bulk` defaults, at the concurrency the node took best (sink.bulk.concurrency).
    ours = Osbatch(url, path, BulkConfig(concurrency=best.concurrency))
    contenders: list[Contender] = [blaster, ours, HelpersBulk(url, path)]
    results: list[list[Run]] = []
    for number in range(rounds):
        print(f"round {number + 1} of {rounds}:")
        # Each round starts one contender later (ABC, BCA, CAB), so load that drifts within a round does not
        # always favour the same one; results stay in contender order.
        order = [(number + n) % len(contenders) for n in range(len(contenders))]
        runs = {n: race(client, contenders[n], records, path, sample) for n in order}
        results.append([runs[n] for n in range(len(contenders))])
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    minutes = (time.perf_counter() - started) / 60
    print(f"{minutes:.1f} minutes for the sweep and {rounds} rounds")

    of_blaster = statistics.median(ours.rate / limit.rate for limit, ours, _ in results)
    over_helpers = statistics.median(ours.rate / theirs.rate for _, ours, theirs in results)
    ceiling = statistics.median(limit.rate / theirs.rate for limit, _, theirs in results)
    loads = [run.load for runs in results for run in runs]
    shared = f"load average {min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} cores"
    print(f"medians of {rounds} rounds, {shared}")
    print("every run's document count and sampled vectors checked")
    print(f"blaster vs helpers.bulk, the most any client gets on this node: {ceiling:.1f}x")
    verdict = {True: "PASS", False: "FAIL"}
    near_limit, over = of_blaster >= 0.9, over_helpers >= 3
    print(f"osbatch vs blaster ({blaster.name}): {of_blaster:.0%} (target >= 90%): {verdict[near_limit]}")
    print(f"osbatch vs helpers.bulk: {over_helpers:.1f}x (target >= 3x): {verdict[over]}")
    return near_limit and over
