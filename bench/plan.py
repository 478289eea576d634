"""`osbatch plan` on a large file: time proportional to the input, memory flat in it.

A generated JSONL file (the demo sample's texts, cycled, each under a unique id; every 1,000th line broken
in one of the ways Prepare dead-letters) is planned through the CLI's own path (`osbatch plan --json`,
pipeline python-docs: SageMaker, tokens counted exactly by MiniLM's tokenizer) in a fresh process, once for
a 64 MB file and once for the large one (1 GB; 48 MB with --quick, against a 4 MB file). Each child
reports its peak RSS (ru_maxrss). The baseline, in the same run and in its own process: counting the large
file's lines with the same reader (osbatch.ingest.readers.split_lines), the least any plan must do.

PASS: the large file's peak is at most 1.2x the small one's, and the plan's counts are the generator's.

    .venv/bin/python bench/plan.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_summary  # noqa: E402

SAMPLE = ROOT / "samples" / "python-docs" / "part-1.jsonl"
BAD_EVERY = 1000
BROKEN = [b'{"_id": "x", "text": ', b'{"text": "no id"}', b'{"_id": "y", "text": null}']
FLAT_TARGET = 1.2


def write_file(path: Path, size: int) -> dict[str, int]:
    """A JSONL file of about `size` bytes; how many records, valid and bad lines it holds."""
    texts = []
    for line in SAMPLE.read_bytes().splitlines():
        try:
            text = json.loads(line).get("text")
        except ValueError:
            continue
        if isinstance(text, str):
            texts.append(text)
    written = records = bad = 0
    with path.open("wb") as out:
        for number, text in zip(itertools.count(1), itertools.cycle(texts), strict=False):
            if number % BAD_EVERY == 0:
                line = BROKEN[(number // BAD_EVERY) % len(BROKEN)]
                bad += 1
            else:
                line = json.dumps({"_id": f"doc-{number}", "text": text}).encode()
            out.write(line + b"\n")
            written += len(line) + 1
            records += 1
            if written >= size:
                break
    return {"records": records, "valid": records - bad, "bad_lines": bad}


def child(kind: str, path: str) -> None:
    """In a fresh process: plan the file (or count its lines), print the result and the peak RSS in KiB."""
    import contextlib
    import io
    import resource

    started = time.perf_counter()
    if kind == "plan":
        from cli.main import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["plan", path, "--pipeline", "python-docs", "--json"])
        plan = json.loads(out.getvalue()) if code == 0 else {}
        result = {key: plan.get(key) for key in ("records", "valid", "bad_lines", "tokens")}
    else:
        from osbatch.ingest.readers import MAX_LINE_BYTES, READ_SIZE, split_lines

        with open(path, "rb") as handle:
            pieces = iter(lambda: handle.read(READ_SIZE), b"")
            lines = sum(1 for _ in split_lines(pieces, 0, max_line_bytes=MAX_LINE_BYTES, key=path))
        result = {"records": lines}
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**result, "seconds": seconds, "peak_kib": peak}))


def run_child(kind: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 48 MB file against a 4 MB one")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    small_bytes, large_bytes = (4 * 2**20, 48 * 2**20) if args.quick else (64 * 2**20, 2**30)
    large_name = "48 MB" if args.quick else "1 GB"
    small_name = "4 MB" if args.quick else "64 MB"
    print(f"bench/plan.py on {cpu_summary()}")
    with tempfile.TemporaryDirectory(prefix="osbatch-plan-bench-") as folder:
        small, large = Path(folder) / "small.jsonl", Path(folder) / "large.jsonl"
        expected_small, expected = write_file(small, small_bytes), write_file(large, large_bytes)
        size_mb = large.stat().st_size / 2**20
        counted = run_child("count", large)
        planned_small = run_child("plan", small)
        planned = run_child("plan", large)
    correct = all(planned[key] == expected[key] for key in expected) and all(
        planned_small[key] == expected_small[key] for key in expected_small
    )
    correct = correct and counted["records"] == expected["records"]
    plan_rate, count_rate = size_mb / planned["seconds"], size_mb / counted["seconds"]
    peak, small_peak = planned["peak_kib"] / 1024, planned_small["peak_kib"] / 1024
    print(
        f"  {small_name}: {planned_small['seconds']:.1f} s, peak {small_peak:.0f} MB; {large_name} "
        f"({size_mb:.0f} MB, {expected['records']:,} lines, {expected['bad_lines']:,} bad): "
        f"{planned['seconds']:.1f} s, peak {peak:.0f} MB, {planned['tokens']:,} tokens"
    )
    print(
        f"  baseline, counting its lines with the same reader: {count_rate:.0f} MB/s "
        f"(peak {counted['peak_kib'] / 1024:.0f} MB); the plan runs at {plan_rate / count_rate:.3f}x that "
        "(it parses, checks, tokenizes and lays out every record)"
    )
    if not correct:
        print(f"  counts differ: expected {expected}, planned {planned}")
    verdict = "PASS" if correct and peak <= FLAT_TARGET * small_peak else "FAIL"
    print(
        f"plan of a {large_name} file: {plan_rate:.1f} MB/s ({plan_rate / count_rate:.3f}x line counting), "
        f"peak memory {peak:.0f} MB (target flat: <= {FLAT_TARGET}x the {small_name} file's peak "
        f"{small_peak:.0f} MB): {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
