"""Scenario e: network faults between the ingest code and the node, through reliability/fault_proxy.py.

The writer is osbatch's own `BulkWriter` (ingest/bulk.py, what every ingest chunk bulks with) on the client
the functions use (`opensearch_client`), with a 3-second timeout so a swallowed response is noticed
quickly; only the proxy stands between it and the real node. For each fault, one round of documents with
ids and external versions, as ingest writes them; then the node is asked, directly, what it holds."""

from __future__ import annotations

import json
import time
from typing import Any

from osbatch.ingest.bulk import BulkWriter
from osbatch.models.ingest import MappedDoc, RecordRef
from osbatch.search.client import opensearch_client
from reliability.accounting import MGET_BATCH, Tally
from reliability.fault_proxy import FAULTS, FaultProxy
from reliability.harness import Harness

INDEX = "osbatch-reliability-network"
VERSION_BASE = 1_000_000  # as PlanIngest's version_base: the line number is added
CLIENT_TIMEOUT_SECONDS = 3


def _versions(client: Any, ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(ids), MGET_BATCH):
        answer = client.mget(
            index=INDEX, body={"ids": ids[start : start + MGET_BATCH]}, params={"_source": "false"}
        )
        found.update({doc["_id"]: int(doc["_version"]) for doc in answer["docs"] if doc.get("found")})
    return found


def network_faults(harness: Harness, scale: int) -> tuple[Tally, float, list[str]]:
    """The tally over every fault's round, the seconds, and notes on what the proxy and the node saw."""
    direct = harness.client
    direct.indices.delete(index=INDEX, ignore_unavailable=True)
    direct.indices.create(index=INDEX, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    per_round = 200 * scale
    expected: dict[str, int] = {}
    failures = 0
    started_at = time.monotonic()
    with FaultProxy(harness.runtime.opensearch.port).running() as proxy:
        client = opensearch_client(proxy.url, timeout=CLIENT_TIMEOUT_SECONDS)
        for fault in FAULTS:
            proxy.arm(fault)
            # Small requests, so every round is several bulk requests and the fault hits the first one.
            writer = BulkWriter(
                client, INDEX, max_bytes=4096, max_retries=5, initial_backoff=0.2, max_backoff=2.0
            )
            for line in range(1, per_round + 1):
                doc_id, body = f"{fault}-{line}", {"fault": fault, "line": line}
                expected[doc_id] = VERSION_BASE + line
                ref = RecordRef(offset=line, line=line, raw=json.dumps(body).encode())
                writer.add(MappedDoc(doc_id, body), ref, version=expected[doc_id])
            failures += len(writer.close())
        applied, bulks = list(proxy.plan.applied), proxy.plan.bulk_requests
    seconds = time.monotonic() - started_at
    direct.indices.refresh(index=INDEX)
    versions = _versions(direct, sorted(expected))
    count = int(direct.count(index=INDEX)["count"])
    stats = direct.indices.stats(index=INDEX, metric="indexing")["indices"][INDEX]["primaries"]["indexing"]
    writes = int(stats["index_total"])
    right = sum(1 for doc_id, version in versions.items() if version == expected[doc_id])
    tally = Tally(records_in=len(expected), indexed=right, dead_lettered=failures)
    tally.lost = len(expected) - len(versions) - failures
    tally.duplicated = (count - len(versions)) + (len(versions) - right)
    notes = [
        f"faults applied {applied} over {bulks} bulk requests through the proxy",
        f"the node applied {writes} index operations for {len(expected)} documents: {writes - len(expected)} "
        "repeated by retries of requests whose outcome the client could not know, each landing on its own "
        f"_id at its own external version ({count} documents; every _version as written: "
        f"{right == len(versions)})",
    ]
    return tally, seconds, notes
