"""ingest-chunk's peak memory (VmHWM, what a sandbox's REPORT line gives) by records per chunk, with and
without a bulk request whose retries run out: what bench/load.py's 100,000 to 1,000,000 runs saw grow.

Each run is one process that does what the ingest-chunk function does: it imports the handler's modules,
then ingest_chunk reads one chunk of `{"_id", "vector"}` lines (64 dimensions, bench/load_data.py) from S3
through boto3, bulk-indexes them with the product's opensearch-py client and `sink.bulk` defaults (8 MiB
requests, two in flight, 10 retries; the backoff shortened so a run takes seconds), checkpoints in memory
and stores dead letters in S3. Around it, in processes of their own so their memory is not counted:
- S3 is a moto server;
- the node is a stand-in used only for this measurement (`serve_node`): it answers each bulk request
  after NODE_SECONDS with OpenSearch's per-item response, as a node that takes seconds per request
  does (so the writer keeps its requests in flight, as against the local node), or with a 429
  `rejected_execution_exception` for every attempt of the request holding the refused id, whose 16,134
  records are then dead-lettered, as at 1,000,000 records in bench/load.py.

Figures: the peak over the imports' baseline, for the clean and the failing run at 100,000 and 125,000
records (48 and 60 MiB chunks: what one chunk was at 100,000 and at 1,000,000 records in bench/load.py).

    .venv/bin/python bench/ingest_chunk_memory.py     (make bench runs it too)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script by bench/run.py

from bench.load_data import doc_id, vector_lines  # noqa: E402
from bench.machine import cpu_summary  # noqa: E402
from osbatch.config import BulkConfig  # noqa: E402

DIM = 64
SIZES = (100_000, 125_000)
QUICK_SIZES = (40_000, 50_000)  # --quick: chunks of 19 and 24 MiB
NODE_SECONDS = 1.0
GROWTH_TARGET = 1.2  # bench/load.py's target for 100,000 -> 1,000,000 records
# Dead-lettering one failed request's records may cost at most this much memory per byte of the request
# (sink.bulk.max_bytes): a 1 MiB spool and one 8 MiB upload part (44 MB, 5.2x, before both were bounded).
DEAD_LETTER_TARGET = 1.5
REFUSED_REASON = (
    "HTTP 429 rejected_execution_exception: rejected execution of coordinating operation "
    "[coordinating_and_primary_bytes=98293430, replica_bytes=0, all_bytes=98293430, "
    "coordinating_operation_bytes=10921195, max_coordinating_and_primary_bytes=107374182] "
    "(gave up after 10 retries)"
)
IDS = re.compile(rb'"_id":"([^"]*)"')
ITEM = (
    b'{"index":{"_index":"load","_id":"%s","_version":1,"result":"created",'
    b'"_shards":{"total":1,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":201}}'
)
REJECTED = json.dumps(
    {
        "error": {
            "type": "rejected_execution_exception",
            "reason": "rejected execution of coordinating operation",
        },
        "status": 429,
    }
).encode()


def serve_node(port: int, refused: str, seconds: float) -> None:
    """The node's stand-in (see the module's docstring); refused: an id whose requests always get 429."""

    class Node(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if refused and refused.encode() in body:
                status, answer = 429, REJECTED
            else:
                time.sleep(seconds)
                items = b",".join(ITEM % (i, n) for n, i in enumerate(IDS.findall(body)))
                status, answer = 200, b'{"took":30,"errors":false,"items":[' + items + b"]}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    ThreadingHTTPServer(("127.0.0.1", port), Node).serve_forever()


def vm_mb(field: str) -> int:
    """VmHWM (the peak) or VmRSS of this process, in MB (proc(5)); as local/aws/sandbox/bootstrap.py."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(s3_url: str, node_url: str, key: str, size: int) -> None:
    """The measured process: print {"base", "peak", "result"} as JSON."""
    import boto3

    import osbatch.handlers.ingest_chunk  # noqa: F401  what the function's sandbox imports
    from bench.node_contenders import MemoryProgress
    from osbatch.field_map import FieldMapper
    from osbatch.ingest.chunk import IngestTarget, ingest_chunk
    from osbatch.ingest.dead_letter import DeadLetterWriter
    from osbatch.models import SourceObject
    from osbatch.models.ingest import IngestChunk
    from osbatch.search.client import opensearch_client

    s3 = boto3.client("s3", endpoint_url=s3_url)
    client = opensearch_client(node_url)
    base = vm_mb("VmHWM")
    chunk = IngestChunk(
        job_id="bench", pipeline="bench", source=SourceObject(bucket="bench-in", key=key), chunk=0,
        bucket="bench-out", key=key, start=0, end=size,
    )  # fmt: skip
    result = ingest_chunk(
        chunk,
        target=IngestTarget(
            FieldMapper({"_id": "$._id", "vector": "$.vector"}),
            "load",
            BulkConfig(initial_backoff_seconds=0.05, max_backoff_seconds=0.4),
        ),
        s3=s3,
        opensearch=client,
        dead_letters=lambda n: DeadLetterWriter(s3, "bench-dlq", f"{n}.jsonl", job_id="bench", source=key),
        progress=MemoryProgress(),
    )
    print(json.dumps({"base": base, "peak": vm_mb("VmHWM"), "result": result.model_dump()}))


def measure_dead_letters(s3_url: str) -> None:
    """The measured process for the dead-letter path alone: the growth (MB) when one request of 8 MiB of
    64-dim records fails whole and its records are dead-lettered and stored, as a chunk's checkpoints do."""
    import boto3

    import osbatch.handlers.ingest_chunk  # noqa: F401  what the function's sandbox imports
    from osbatch.ingest.bulk import Settled
    from osbatch.ingest.checkpoints import Checkpoints
    from osbatch.ingest.dead_letter import DeadLetterWriter
    from osbatch.models.ingest import Checkpoint, Failure, RecordRef

    s3 = boto3.client("s3", endpoint_url=s3_url)
    failures, size, offset = [], 0, 0
    for line, raw in enumerate(vector_lines(100_000, DIM), start=1):
        size += len(raw) + 40  # the index action of its document
        if size > BulkConfig().max_bytes:
            break
        failures.append(Failure(RecordRef(offset, line, raw.rstrip(b"\n")), REFUSED_REASON))
        offset += len(raw)
    base = vm_mb("VmHWM")
    checkpoints = Checkpoints(
        Checkpoint(offset=0),
        lambda n: DeadLetterWriter(s3, "bench-dlq", f"alone-{n}.jsonl", job_id="bench", source="bench"),
        None,
    )
    checkpoints.settled(Settled(end=offset, failures=failures))
    stored = checkpoints.finish().dead_lettered
    print(json.dumps({"growth": vm_mb("VmHWM") - base, "stored": stored, "records": len(failures)}))


@dataclass(frozen=True)
class Run:
    records: int
    failing: bool
    base_mb: int
    peak_mb: int
    indexed: int
    dead_lettered: int

    @property
    def over_imports_mb(self) -> int:
        return self.peak_mb - self.base_mb


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")]),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "bench",
    }


def _child(call: str) -> dict[str, Any]:
    """Run `call` (a function of this module) in a fresh process; the JSON it printed last."""
    code = f"import bench.ingest_chunk_memory as m; m.{call}"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def one_run(s3_url: str, path: Path, refused: str) -> Run:
    """refused: an id whose request the stand-in always refuses, or "" for a clean run."""
    port = _free_port()
    node_code = f"import bench.ingest_chunk_memory as m; m.serve_node({port}, {refused!r}, {NODE_SECONDS})"
    node = subprocess.Popen([sys.executable, "-c", node_code], cwd=ROOT, env=_env())
    try:
        time.sleep(1)  # the stand-in listening
        figures = _child(
            f"measure({s3_url!r}, 'http://127.0.0.1:{port}', {path.name!r}, {path.stat().st_size})"
        )
    finally:
        node.terminate()
        node.wait()
    result = figures["result"]
    return Run(
        int(result["lines"]),
        bool(refused),
        figures["base"],
        figures["peak"],
        result["indexed"],
        result["dead_lettered"],
    )


def main(sizes: tuple[int, int] = SIZES) -> bool:
    import boto3

    verdict = {True: "PASS", False: "FAIL"}
    print(f"CPU: {cpu_summary()}")
    port = _free_port()
    s3_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs: dict[tuple[int, bool], Run] = {}
    try:
        time.sleep(2)  # moto listening
        env = _env()
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        for bucket in ("bench-out", "bench-dlq"):
            s3.create_bucket(Bucket=bucket)
        with tempfile.TemporaryDirectory() as work:
            for records in sizes:
                path = Path(work) / f"vectors-{records}.jsonl"
                with path.open("wb") as out:
                    out.writelines(vector_lines(records, DIM))
                s3.upload_file(str(path), "bench-out", path.name)
                for failing in (False, True):
                    # The refused request is the middle one of the smaller chunk (the 4th at 100,000).
                    run = one_run(s3_url, path, doc_id(sizes[0] // 2) if failing else "")
                    runs[records, failing] = run
                    what = "one request refused to the end" if failing else "every request accepted"
                    print(
                        f"  {records:,} records ({path.stat().st_size / 2**20:.0f} MiB), {what}: peak "
                        f"{run.peak_mb} MB, {run.over_imports_mb} MB over the imports' {run.base_mb} MB "
                        f"({run.indexed:,} indexed, {run.dead_lettered:,} dead-lettered)"
                    )
        alone = _child(f"measure_dead_letters({s3_url!r})")
    finally:
        server.terminate()
        server.wait()
    small, large = sizes
    correct = all(
        run.indexed + run.dead_lettered == run.records and (run.dead_lettered > 0) == run.failing
        for run in runs.values()
    )
    passed = correct
    for failing in (False, True):
        growth = runs[large, failing].peak_mb / runs[small, failing].peak_mb
        ok = correct and growth <= GROWTH_TARGET
        passed &= ok
        name = "with a request dead-lettered" if failing else "every request accepted"
        target = f"(target {GROWTH_TARGET}x): {verdict[ok]}"
        print(f"peak growth {small:,} -> {large:,} records, {name}: {growth:.2f}x {target}")
    for records in sizes:
        cost = runs[records, True].peak_mb / runs[records, False].peak_mb
        print(f"  (the failing run's peak at {records:,} records: {cost:.2f}x the clean run's)")
    request_mib = BulkConfig().max_bytes / 2**20
    ratio = alone["growth"] / request_mib
    print(
        f"  one failed request's {alone['records']:,} records dead-lettered and stored, alone: "
        f"{alone['growth']} MB more ({alone['stored']:,} stored)"
    )
    ok = alone["stored"] == alone["records"] and ratio <= DEAD_LETTER_TARGET
    passed &= ok
    target = f"(target {DEAD_LETTER_TARGET}x): {verdict[ok]}"
    print(f"dead-lettering one failed request: {ratio:.2f}x its bytes {target}")
    return passed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"chunks of {QUICK_SIZES} records")
    sys.exit(0 if main(QUICK_SIZES if parser.parse_args().quick else SIZES) else 1)
