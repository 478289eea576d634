"""The node-only baseline for the load runs: how fast the node alone takes the same records.

The same records (bench/load_data.py), into a fresh index with the load-vectors pipeline's mapping as the
local stack deploys it (on lucene: the local node has no native k-NN libraries, local/opensearch/mapping.py)
and the settings osbatch loads a new index with (refresh_interval -1, 0 replicas: search/bulk_load.py),
sent as bench/ingest_node.py's blaster sends them: bodies of 8 MiB serialized before the clock starts, two in
flight (the setting its sweep picks on this machine), uncompressed, only `errors` asked back. No parsing,
mapping, checkpoints or dead letters: whatever the stack does beyond this is its overhead.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from bench.load_data import BLOCK, doc_id, vector_block
from local.opensearch.mapping import localize_mapping

BODY_BYTES = 8 * 2**20
CONCURRENCY = 2
INDEX = "bench-load-baseline"


@dataclass(frozen=True)
class Baseline:
    records: int
    seconds: float
    node_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def describe(self) -> str:
        return (
            f"node-only baseline, {self.records} records: {self.rate:.0f} docs/s ({self.seconds:.0f} s; node "
            f"{self.node_cpu_seconds * 1e6 / self.records:.0f} us of CPU per document)"
        )


def bodies(records: int, dim: int, field: str) -> list[bytes]:
    out: list[bytes] = []
    pending: list[bytes] = []
    size = 0
    for block in range(0, (records + BLOCK - 1) // BLOCK):
        count = min(BLOCK, records - block * BLOCK)
        for offset, vector in enumerate(vector_block(block, dim, count).tolist()):
            pair = orjson.dumps({"index": {"_id": doc_id(block * BLOCK + offset)}}) + b"\n"
            pair += orjson.dumps({field: vector}, option=orjson.OPT_APPEND_NEWLINE)
            if size + len(pair) > BODY_BYTES and pending:
                out.append(b"".join(pending))
                pending, size = [], 0
            pending.append(pair)
            size += len(pair)
    if pending:
        out.append(b"".join(pending))
    return out


def node_cpu_seconds(client: Any) -> float:
    stats = client.nodes.stats(metric="process")
    return sum(node["process"]["cpu"]["total_in_millis"] for node in stats["nodes"].values()) / 1000


def run_baseline(client: Any, mapping: dict[str, Any], records: int, dim: int, field: str) -> Baseline:
    """Index the records straight into the node; checks the count before it answers."""
    payload = bodies(records, dim, field)
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    local, _ = localize_mapping(mapping)
    settings = {**local.get("settings", {}), "number_of_replicas": 0, "refresh_interval": "-1"}
    client.indices.create(index=INDEX, body={**local, "settings": settings})

    def send(body: bytes) -> None:
        answer = client.transport.perform_request(
            "POST", f"/{INDEX}/_bulk", body=body, params={"filter_path": "errors"}
        )
        assert answer == {"errors": False}, answer

    node, wall = node_cpu_seconds(client), time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(send, payload))
    wall, node = time.perf_counter() - wall, node_cpu_seconds(client) - node
    del payload
    client.indices.refresh(index=INDEX)
    count = int(client.count(index=INDEX)["count"])
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    assert count == records, f"baseline: {count} documents, expected {records}"
    return Baseline(records, wall, node)
