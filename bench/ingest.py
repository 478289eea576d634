"""Ingest path throughput: model-output lines per second one ingest Lambda turns into bulk requests.

What it measures: `ingest_chunk` itself — ranged S3 reads (moto, in process), parsing, field mapping,
NDJSON encoding and bulk batching — over SageMaker-shaped output lines with 384-dim vectors. What it does
not measure: OpenSearch. The bulk client is an in-process sink that checks each request's lines and
answers success, so the figure is the Lambda's own CPU ceiling, not cluster indexing speed.

Baseline, in the same run: the same path with the standard library's json in place of orjson (the
shipped codec). Prints lines/s for both, and the ratio, each a median of several repeats; the verdict is
on lines per CPU-second (target 5x), the steadier figure on a shared machine, and every run must have
indexed every line.

With --node, the real thing instead: ingest into the local OpenSearch node against a pre-serialized
`_bulk` blaster and `opensearchpy.helpers.bulk` (bench/ingest_node.py). With --memory, peak RSS of the
ingest path on a 64 MiB and a 2 GiB output file (bench/ingest_memory.py).

    .venv/bin/python bench/ingest.py [--lines 4000] [--repeats 3]
    OSBATCH_OPENSEARCH_PORT=9203 .venv/bin/python bench/ingest.py --node [--records 200000] [--rounds 3]
    .venv/bin/python bench/ingest.py --memory [--memory-gib 2]

--quick, in any mode, runs a smaller version for a first look: 1000 lines and 2 repeats; 10,000 records
and 1 round on the node; a 256 MiB file against the 64 MiB one for memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]
for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
    os.environ.setdefault(name, value)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from bench.machine import cpu_summary  # noqa: E402
from osbatch import jsonlines  # noqa: E402
from osbatch.config import parse_pipeline  # noqa: E402
from osbatch.ingest.chunk import IngestTarget, ingest_chunk  # noqa: E402
from osbatch.ingest.dead_letter import DeadLetterWriter  # noqa: E402
from osbatch.models import SourceObject  # noqa: E402
from osbatch.models.ingest import IngestChunk  # noqa: E402

TARGET_OVER_STDLIB = 5.0  # lines per CPU-second, orjson (shipped) over the standard library's json
QUICK = {"lines": 1000, "repeats": 2, "records": 10_000, "rounds": 1, "memory_gib": 0.25}

CONFIG = parse_pipeline(
    {
        "name": "bench",
        "source": {"prefix": "in/"},
        "inference": {"backend": "sagemaker", "sagemaker": {"ModelName": "m"}},
        "sink": {
            "opensearch": {"endpoint": "http://127.0.0.1:9200"},
            "index": "bench",
            "field_map": {"_id": "$._id", "chunk": "$.text", "chunk_embedding": "$.SageMakerOutput"},
        },
    }
)


class CountingSink:
    """Stands in for OpenSearch: counts the documents in each bulk body and reports them all indexed."""

    def __init__(self) -> None:
        self.documents = 0

    def bulk(self, body: bytes, **_: Any) -> dict[str, Any]:
        documents = body.count(b"\n") // 2
        self.documents += documents
        return {"errors": False, "items": [{"index": {"status": 201}}] * documents}


def output_lines(count: int) -> bytes:
    rng = random.Random(42)
    words = [
        "index",
        "vector",
        "search",
        "batch",
        "model",
        "embedding",
        "passage",
        "query",
        "shard",
        "replica",
    ]
    lines = []
    for number in range(count):
        text = " ".join(rng.choice(words) for _ in range(60))
        vector = [rng.uniform(-0.2, 0.2) for _ in range(384)]
        record = {
            "_id": f"doc-{number}",
            "text": text,
            "SageMakerOutput": vector,
            "_osbatch": {"line": number + 1},
        }
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def stdlib_json() -> Iterator[None]:
    """The baseline codec: the standard library, as ingest used before orjson."""
    saved = (jsonlines.loads, jsonlines.dumps, jsonlines.dump_line)
    jsonlines.loads = json.loads  # type: ignore[assignment]
    jsonlines.dumps = lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    jsonlines.dump_line = lambda value: jsonlines.dumps(value) + b"\n"
    try:
        yield
    finally:
        jsonlines.loads, jsonlines.dumps, jsonlines.dump_line = saved


def run_once(s3: Any, size: int, lines: int) -> tuple[float, float]:
    sink = CountingSink()
    chunk = IngestChunk(
        job_id="bench",
        pipeline="bench",
        source=SourceObject(bucket="bench", key="in.jsonl"),
        chunk=0,
        bucket="bench",
        key="out.jsonl.out",
        start=0,
        end=size,
    )
    dead = DeadLetterWriter(s3, "bench", "dead/0.jsonl", job_id="bench", source="s3://bench/in.jsonl")
    wall, cpu = time.perf_counter(), time.process_time()
    result = ingest_chunk(
        chunk,
        target=IngestTarget.of_pipeline(CONFIG),
        s3=s3,
        opensearch=sink,
        dead_letters=lambda segment: dead,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.indexed == lines == sink.documents, (result, sink.documents)
    return lines / wall, lines / cpu


def measure(s3: Any, size: int, lines: int, repeats: int, codec: Callable[[], Any]) -> tuple[float, float]:
    with codec():
        runs = [run_once(s3, size, lines) for _ in range(repeats)]
    return statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--node", action="store_true", help="ingest into the local OpenSearch node instead")
    parser.add_argument("--records", type=int, default=200_000, help="records for --node")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every contender for --node")
    parser.add_argument("--memory", action="store_true", help="peak RSS on a small and a large output file")
    parser.add_argument("--memory-gib", type=float, default=2, help="the large file's size for --memory")
    parser.add_argument("--quick", action="store_true", help="a smaller run for a first look")
    args = parser.parse_args()
    if args.quick:
        # Only the sizes left at their defaults shrink: an explicit flag still wins.
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    print(f"cpu: {cpu_summary()}")
    if args.memory:
        import tempfile

        from bench.ingest_memory import main as memory_main

        with tempfile.TemporaryDirectory(prefix="osbatch-bench-", dir="/tmp") as work:
            return 0 if memory_main(Path(work), int(args.memory_gib * 2**30)) else 1
    if args.node:
        import tempfile

        from bench.ingest_node import main as node_main
        from local.runtime import local_runtime

        node = local_runtime().opensearch
        if not node.ready():
            print(f"the local OpenSearch node is not running at {node.url}: start it with `osbatch up`")
            return 2
        with tempfile.TemporaryDirectory(prefix="osbatch-bench-") as work:
            return 0 if node_main(node.url, args.records, args.rounds, Path(work)) else 1
    body = output_lines(args.lines)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="out.jsonl.out", Body=body)
        run_once(s3, len(body), args.lines)  # warm-up: imports, moto, allocator
        shipped = measure(s3, len(body), args.lines, args.repeats, nullcontext)
        baseline = measure(s3, len(body), args.lines, args.repeats, stdlib_json)
    per_line = len(body) / args.lines
    print(f"ingest_chunk over {args.lines} lines of {per_line / 1024:.1f} KiB (384-dim vectors),")
    print(f"S3 in moto, OpenSearch replaced by an in-process counting sink; medians of {args.repeats} runs")
    for label, (wall, cpu) in (("orjson (shipped)", shipped), ("stdlib json baseline", baseline)):
        print(f"  {label:22} {wall:7.0f} lines/s ({wall * per_line / 1e6:5.1f} MB/s), {cpu:7.0f} per CPU-s")
    print(f"  ratio shipped/baseline: {shipped[0] / baseline[0]:.2f}x wall")
    ratio = shipped[1] / baseline[1]
    ok = ratio >= TARGET_OVER_STDLIB
    print(  # every run asserted that each line was indexed: a FAIL of correctness stops the bench before this
        f"ingest_chunk, orjson vs stdlib json, lines per CPU-second: {ratio:.2f}x "
        f"(target >= {TARGET_OVER_STDLIB:g}x): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
