"""Peak RSS of the ingest path as the output file grows: a small file against a 2 GB one.

Each file is ingested by ingest_chunk in a fresh process (read, parse, map, versioned bulk, checkpoints),
into an in-process sink that answers every bulk request with success: this measures the function, not the
node. The files are SageMaker-shaped lines with 384-dim vectors (bench/node_contenders.py), written to a
temporary directory and deleted afterwards.

    .venv/bin/python bench/ingest.py --memory [--memory-gib 2] [--quick]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.node_contenders import run_osbatch, write_file
from osbatch.config import BulkConfig

ROOT = Path(__file__).resolve().parent.parent
SMALL_BYTES = 64 * 2**20


class SuccessSink:
    """Stands in for OpenSearch: every document of every bulk request indexed."""

    def bulk(self, *, body: bytes, index: Any = None) -> dict[str, Any]:
        return {"errors": False, "items": [{"index": {"status": 201}}] * (body.count(b"\n") // 2)}


def ingest_in_process(path: str) -> None:
    """The child's side: ingest the file, then print its peak RSS in KiB."""
    import resource

    indexed = run_osbatch(Path(path), SuccessSink(), "bench", BulkConfig())
    print(indexed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_rss_mb(path: Path) -> tuple[int, float]:
    code = f"import bench.ingest_memory as m; m.ingest_in_process({str(path)!r})"
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, env=_env())
    indexed, kib = out.stdout.split()[-2:]
    return int(indexed), int(kib) / 1024


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")])}


def sized_file(path: Path, target_bytes: int) -> int:
    """Write about target_bytes of records to path; how many records."""
    write_file(path, 1000)
    records = max(1, round(1000 * target_bytes / path.stat().st_size))
    write_file(path, records)
    return records


def main(work: Path, large_bytes: int) -> bool:
    """Print the figures and their verdicts; whether every target was met."""
    verdict = {True: "PASS", False: "FAIL"}
    rss = []
    for name, size in (("small", SMALL_BYTES), ("large", large_bytes)):
        path = work / f"rss-{name}.jsonl"
        records = sized_file(path, size)
        indexed, peak = peak_rss_mb(path)
        assert indexed == records, f"{path}: {indexed} of {records} indexed"
        mib = path.stat().st_size / 2**20
        print(f"  ingest_chunk over {mib:6.0f} MiB ({records} records): peak RSS {peak:.0f} MB")
        rss.append(peak)
        path.unlink()
    growth, gib = rss[1] / rss[0], large_bytes / 2**30
    flat, small = growth <= 1.2, rss[1] <= 300
    print(f"peak RSS growth, {gib:g} GiB vs 64 MiB file: {growth:.2f}x (target <= 1.2x): {verdict[flat]}")
    print(f"peak RSS on {gib:g} GiB: {rss[1]:.0f} MB (target <= 300 MB): {verdict[small]}")
    return flat and small
