"""Every bench in bench/, each in its own process, then one table of all their verdicts.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--no-runtime]
    make bench            # the same as bench/run.py
    make bench QUICK=1    # bench/run.py --quick: a few minutes, for a first look

A bench is a script in bench/ that runs as a program (it has an `if __name__ == "__main__":` block); the
other modules there (ingest_memory.py, ingest_node.py, node_contenders.py, machine.py) are parts of a bench.
Every bench ends with one line per target, `<name>: <figure> (target <T>): PASS|FAIL`, which the runner
collects. MODES names the runs of a bench beyond its plain one (ingest.py --memory, --node) and the benches
that need the local runtime; a new bench is picked up without being named there, and run plainly. --quick
passes --quick to every bench whose source offers it (each bench says in its docstring what it shrinks).

Benches that need the local runtime run last, together. The runner starts the runtime for them if it is not
running, and stops it again afterwards; if it cannot start it, or with --no-runtime, it reports them as SKIP
with the reason. The exit code is 1 if any verdict is FAIL or any bench ended without its verdicts (ERROR).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_summary  # noqa: E402

RUNNER = "run"
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)
VERDICT = re.compile(r"^(?P<name>.+?): (?P<figure>.+) \(target (?P<target>[^()]*)\): (?P<result>PASS|FAIL)$")


@dataclass(frozen=True)
class Mode:
    """One run of a bench: its flags, and whether it needs the local runtime (OpenSearch node, emulators)."""

    flags: tuple[str, ...] = ()
    needs_runtime: bool = False


# Benches with more than a plain run, or that need the runtime. A bench not named here runs once, plainly.
MODES: dict[str, tuple[Mode, ...]] = {
    "ingest": (Mode(), Mode(("--memory",)), Mode(("--node",), needs_runtime=True)),
    "completion_delay": (Mode(needs_runtime=True),),
    # `osbatch jobs` is timed against a running runtime.
    "cli_startup": (Mode(needs_runtime=True),),
    # Retrieval quality is measured through `osbatch search` on the node.
    "long_documents": (Mode(needs_runtime=True),),
    # The deployed stack's paths with a million records (docs/reliability.md, "Load").
    "load": (Mode(needs_runtime=True),),
}


@dataclass(frozen=True)
class Run:
    bench: str
    mode: Mode

    @property
    def script(self) -> Path:
        return BENCH_DIR / f"{self.bench}.py"

    def label(self) -> str:
        return " ".join((self.bench, *self.mode.flags))

    def argv(self, quick: bool) -> list[str]:
        offers_quick = "--quick" in self.script.read_text(encoding="utf-8")
        return [
            sys.executable,
            str(self.script),
            *self.mode.flags,
            *(["--quick"] if quick and offers_quick else []),
        ]


@dataclass(frozen=True)
class Verdict:
    name: str
    figure: str
    target: str
    result: str  # PASS, FAIL, SKIP or ERROR


@dataclass
class Outcome:
    run: Run
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(verdict.result in ("FAIL", "ERROR") for verdict in self.verdicts)


def benches(folder: Path = BENCH_DIR) -> list[str]:
    """The scripts in folder that run as programs, by name; the runner itself is not one."""
    return sorted(
        path.stem
        for path in folder.glob("*.py")
        if path.stem != RUNNER and MAIN_GUARD.search(path.read_text(encoding="utf-8"))
    )


def planned_runs(names: list[str]) -> list[Run]:
    """Every mode of every bench, those that need the runtime last (so it is up once, for all of them)."""
    runs = [Run(name, mode) for name in names for mode in MODES.get(name, (Mode(),))]
    return sorted(runs, key=lambda run: run.mode.needs_runtime)  # stable: by name within each group


def verdicts_in(output: list[str]) -> list[Verdict]:
    found = (VERDICT.match(line.strip()) for line in output)
    return [Verdict(m["name"], m["figure"], m["target"], m["result"]) for m in found if m]


def execute(run: Run, quick: bool) -> Outcome:
    """Run one bench, echoing its output as it comes, and collect its verdicts."""
    argv = run.argv(quick)
    print(f"\n=== bench/{' '.join([run.script.name, *argv[2:]])}", flush=True)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            print(line, end="", flush=True)
            output.append(line)
        code = process.wait()
    outcome = Outcome(run, verdicts_in(output), time.perf_counter() - started)
    failed = any(verdict.result == "FAIL" for verdict in outcome.verdicts)
    if not outcome.verdicts or (code != 0 and not failed):
        # A crash, or an exit code its verdicts do not explain: the figures, if any, are not to be trusted.
        outcome.verdicts.append(Verdict("ended without its verdicts", f"exit code {code}", "exit 0", "ERROR"))
    return outcome


def skipped(run: Run, reason: str) -> Outcome:
    print(f"\n=== {run.label()}: SKIP ({reason})", flush=True)
    return Outcome(run, [Verdict("not run", reason, "-", "SKIP")])


def run_all(runs: list[Run], quick: bool, no_runtime: bool) -> list[Outcome]:
    outcomes = [execute(run, quick) for run in runs if not run.mode.needs_runtime]
    needing = [run for run in runs if run.mode.needs_runtime]
    if not needing:
        return outcomes
    if no_runtime:
        return outcomes + [skipped(run, "--no-runtime") for run in needing]
    from local.runtime import local_runtime

    runtime = local_runtime()
    ours = not runtime.is_up()  # started here, so stopped here; a runtime that was up stays up
    try:
        if ours:
            print("\n=== starting the local runtime for the benches that need it", flush=True)
            try:
                runtime.up()
            except Exception as error:  # no JDK, no Maven, a port taken: say why, and skip only these
                reason = f"the local runtime did not start: {type(error).__name__}: {error}"
                return outcomes + [skipped(run, reason) for run in needing]
        return outcomes + [execute(run, quick) for run in needing]
    finally:
        if ours:
            print("\n=== stopping the local runtime", flush=True)
            runtime.down()


def summary(outcomes: list[Outcome], minutes: float, quick: bool) -> list[str]:
    rows = [("bench", "verdict", "figure", "target", "result", "time")]
    for outcome in outcomes:
        for verdict in outcome.verdicts:
            seconds = f"{outcome.seconds:.0f} s" if outcome.seconds else "-"
            rows.append(
                (outcome.run.label(), verdict.name, verdict.figure, verdict.target, verdict.result, seconds)
            )
    widths = [min(max(len(row[column]) for row in rows), 60) for column in range(len(rows[0]))]
    lines = [
        f"summary ({'quick' if quick else 'full'} run, {minutes:.1f} minutes) on {cpu_summary()}",
        *(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ),
    ]
    counts = {
        result: sum(row[4] == result for row in rows[1:]) for result in ("PASS", "FAIL", "ERROR", "SKIP")
    }
    lines.append(", ".join(f"{count} {result}" for result, count in counts.items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each bench's few-minute version")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="these benches only (file names without .py)"
    )
    parser.add_argument(
        "--no-runtime", action="store_true", help="skip the benches that need the local runtime"
    )
    args = parser.parse_args(argv)
    names = benches()
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"no such bench: {', '.join(unknown)} (benches: {', '.join(names)})")
    started = time.perf_counter()
    outcomes = run_all(planned_runs(args.only or names), args.quick, args.no_runtime)
    print()
    print("\n".join(summary(outcomes, (time.perf_counter() - started) / 60, args.quick)))
    return 1 if any(outcome.failed for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
