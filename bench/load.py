"""Load runs on the local runtime: the deployed stack's paths with a million records, nothing lost.

1. `osbatch batch-ingest --stack` (bench/load_stack.py) at each size of --stack-records (default 100,000
   and 1,000,000), records with precomputed 64-dimension vectors (--dim), so the node and the ingest path
   are measured, not inference: throughput over the execution, the ingest-chunk functions' peak memory
   (their sandboxes' REPORT lines) and conservation from the index and the dead letters alone; then the
   node-only baseline on the same records (bench/load_baseline.py), and how each figure changes with size.
2. The full path (bench/load_full_path.py): --full-path records (default 100,000) of short text uploaded
   to the load-text pipeline's prefix, embedded by the local MiniLM through the SageMaker transform
   emulator, indexed; its stage times, throughput and conservation.

    .venv/bin/python bench/load.py [--only stack full] [--stack-records N ...] [--full-path N] [--dim D]
    .venv/bin/python bench/load.py --quick      # 10,000 and 50,000 records on the stack, 2,000 texts

The local runtime is started if it is not running, and stopped again at the end in that case. Run under the
machine's runtime lock when the machine is shared. Exits 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_baseline import Baseline, run_baseline  # noqa: E402
from bench.load_full_path import FullPathRun, run_full_path  # noqa: E402
from bench.load_stack import VECTOR_FIELD, VECTOR_PIPELINE, LoadStack, StackRun, run_batch_stack  # noqa: E402
from bench.machine import cpu_summary  # noqa: E402
from local.runtime import local_runtime  # noqa: E402

VERDICT = {True: "PASS", False: "FAIL"}
# The stack against the node alone, on the same records: the execution (Step Functions, every chunk's
# sandbox, parse, map, versioned bulk, checkpoints, the job table) may cost at most the node's own time
# again on this 2-core machine, where the 8 ingest sandboxes and the node share the cores.
STACK_VS_NODE_TARGET = 0.5
# Peak memory must not grow with the records: the chunks stream their byte ranges (as bench/ingest.py
# --memory checks for one chunk in process, here for the deployed functions).
MEMORY_GROWTH_TARGET = 1.2


def stack_verdicts(runs: list[tuple[StackRun, Baseline | None]]) -> list[tuple[str, bool]]:
    lines = []
    for run, baseline in runs:
        n, c, m = run.records, run.conservation, run.memory
        lines.append(
            (
                f"load stack {n} conservation: {c.lost} lost, {c.duplicated} duplicated, "
                f"{len(run.vectors_wrong)} sampled vectors wrong (target 0, 0, 0)",
                c.clean and not run.vectors_wrong and c.indexed + c.dead_lettered == n,
            )
        )
        # The generated records are all valid: each one dead-lettered is one the stack failed to index.
        lines.append(
            (
                f"load stack {n} indexed: {c.indexed} of {n}, {c.dead_lettered} dead-lettered "
                f"(target every record, none dead-lettered)",
                c.indexed == n,
            )
        )
        lines.append(
            (
                f"load stack {n} ingest-chunk peak memory: {m.peak_mb} MB over {m.invocations} invocations "
                f"(target < {m.configured_mb} MB, the function's size)",
                m.under_configured,
            )
        )
        if baseline:
            ratio = run.rate / baseline.rate
            lines.append(
                (
                    f"load stack {n} throughput vs node-only: {ratio:.2f}x ({run.rate:.0f} vs "
                    f"{baseline.rate:.0f} docs/s) (target >= {STACK_VS_NODE_TARGET}x)",
                    ratio >= STACK_VS_NODE_TARGET and c.clean,
                )
            )
    if len(runs) > 1:
        (small, _), (large, _) = runs[0], runs[-1]
        growth = large.memory.peak_mb / max(small.memory.peak_mb, 1)
        lines.append(
            (
                f"load stack peak memory growth {large.records} vs {small.records} records: {growth:.2f}x "
                f"(target <= {MEMORY_GROWTH_TARGET}x)",
                growth <= MEMORY_GROWTH_TARGET and large.memory.invocations > 0,
            )
        )
    return lines


def scaling(runs: list[tuple[StackRun, Baseline | None]]) -> list[str]:
    """How each figure changes from the smallest run to each larger one."""
    (small, small_base), lines = runs[0], []
    for run, base in runs[1:]:
        factor = run.records / small.records
        lines.append(
            f"{small.records} -> {run.records} records ({factor:.0f}x): execution time "
            f"{run.execution_seconds / small.execution_seconds:.1f}x, docs/s {run.rate / small.rate:.2f}x, "
            f"chunks {small.chunks} -> {run.chunks}, "
            f"peak memory {small.memory.peak_mb} -> {run.memory.peak_mb} MB"
            + (f", node-only docs/s {base.rate / small_base.rate:.2f}x" if base and small_base else "")
        )
    return lines


def full_path_verdicts(run: FullPathRun) -> list[tuple[str, bool]]:
    c, m = run.conservation, run.memory
    return [
        (
            f"load full path {run.records} conservation: {c.lost} lost, {c.duplicated} duplicated "
            f"(target 0, 0)",
            c.clean and c.indexed + c.dead_lettered == run.records,
        ),
        (
            f"load full path {run.records} indexed: {c.indexed} of {run.records}, {c.dead_lettered} "
            f"dead-lettered (target every record, none dead-lettered)",
            c.indexed == run.records,
        ),
        (
            f"load full path {run.records} ingest-chunk peak memory: {m.peak_mb} MB "
            f"(target < {m.configured_mb} MB, the function's size)",
            m.under_configured,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=("stack", "full"), default=("stack", "full"))
    parser.add_argument("--stack-records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--full-path", type=int, default=100_000, help="records through the full path")
    parser.add_argument("--dim", type=int, default=64, help="the vectors' dimension (the pipeline's mapping)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the node-only baseline")
    parser.add_argument("--quick", action="store_true", help="10,000 and 50,000 records; 2,000 texts")
    parser.add_argument("--work", type=Path, help="where the input files are written (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.stack_records, args.full_path = [10_000, 50_000], 2_000
    print(f"cpu: {cpu_summary()}", flush=True)
    runtime = local_runtime()
    was_up = runtime.is_up()
    runtime.up(progress=lambda _: None)
    verdicts: list[tuple[str, bool]] = []

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        load = LoadStack(runtime)
        mapping = load.configs[VECTOR_PIPELINE].sink.mapping
        if mapping["mappings"]["properties"][VECTOR_FIELD]["dimension"] != args.dim:
            parser.error(f"--dim {args.dim}: bench/pipelines/load-vectors.yaml maps {VECTOR_FIELD} otherwise")
        with tempfile.TemporaryDirectory(prefix="osbatch-load-", dir=args.work) as scratch:
            work = Path(scratch)
            if "full" in args.only:
                full = run_full_path(load, args.full_path, work, say=say)
                print("\n".join(full.describe()), flush=True)
                verdicts += full_path_verdicts(full)
            if "stack" in args.only:
                runs: list[tuple[StackRun, Baseline | None]] = []
                for records in args.stack_records:
                    run = run_batch_stack(load, records, args.dim, work, say=say)
                    print("\n".join(run.describe()), flush=True)
                    baseline = None
                    if not args.no_baseline:
                        baseline = run_baseline(load.client, mapping, records, args.dim, VECTOR_FIELD)
                        print(baseline.describe(), flush=True)
                    runs.append((run, baseline))
                print("\n".join(scaling(runs)), flush=True)
                verdicts += stack_verdicts(runs)
    finally:
        if not was_up:
            runtime.down(progress=lambda _: None)
    for text, passed in verdicts:
        print(f"{text}: {VERDICT[passed]}")
    return 0 if verdicts and all(passed for _, passed in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
