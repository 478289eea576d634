"""How fast `osbatch` answers: `osbatch --help`, and `osbatch jobs` against a running local runtime.

    python bench/cli_startup.py [--runs 7] [--start]

Each figure is the median wall time of fresh processes, next to `python -c pass` (the interpreter's own
start) measured in the same run. `osbatch jobs` needs the local runtime up with the stack deployed; without
it the bench skips that line and says how to get one, or with --start brings one up (`osbatch up`,
`osbatch deploy --local`) and stops it afterwards. Run that under the machine's runtime lock where several
people share one. Targets: --help in at most 0.5 s, jobs in at most 1 s.

Ends with one line per target: `<name>: <figure> (target <= T s): PASS|FAIL`, PASS only if the command also
exited 0 and printed what it should.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OSBATCH = [str(Path(sys.executable).parent / "osbatch")]  # the installed entry point, as users run it
HELP_TARGET_S = 0.5
JOBS_TARGET_S = 1.0


def cpu() -> str:
    """The CPU's model name and the vector extensions the kernel reports."""
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = sorted(set(re.findall(r"\b(avx512[a-z_]*|avx_vnni|avx2)\b", text)))
    return f"{name.group(1) if name else 'unknown CPU'} ({', '.join(flags) or 'no avx2'})"


def timed(
    command: Sequence[str], check: Callable[[subprocess.CompletedProcess[str]], bool], runs: int
) -> tuple[float, bool]:
    """(median seconds over `runs` fresh processes, whether every run exited 0 and passed `check`)."""
    times, ok = [], True
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - started)
        ok = ok and result.returncode == 0 and check(result)
    return statistics.median(times), ok


def runtime_with_stack() -> bool:
    """Whether the local runtime is up with the stack deployed (what `osbatch jobs` acts on)."""
    from cli.target import local_target

    return local_target() is not None


def osbatch(*args: str) -> None:
    subprocess.run([*OSBATCH, *args], cwd=REPO_ROOT, check=True)


def line(name: str, seconds: float, target: float, ok: bool) -> str:
    verdict = "PASS" if ok and seconds <= target else "FAIL"
    return f"{name}: {seconds:.3f} s (target <= {target:g} s): {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command (median)")
    parser.add_argument("--start", action="store_true", help="start the local runtime if it is not up")
    parser.add_argument("--quick", action="store_true", help="3 runs each, for a first look")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = min(args.runs, 3)
    print(f"CPU: {cpu()}; {args.runs} runs each, medians")

    baseline, _ = timed([sys.executable, "-c", "pass"], lambda r: True, args.runs)
    print(f"python -c pass: {baseline:.3f} s")
    help_s, help_ok = timed([*OSBATCH, "--help"], lambda r: "COMMAND" in r.stdout, args.runs)
    print(f"osbatch --help: {help_s:.3f} s, {help_s / baseline:.1f}x python -c pass")

    results = [line("osbatch --help", help_s, HELP_TARGET_S, help_ok)]
    started_here = False
    if not runtime_with_stack():
        if not args.start:
            print(
                "osbatch jobs: SKIPPED, no local runtime with the stack deployed; run `osbatch up && "
                "osbatch deploy --local` first, or pass --start"
            )
            print("\n".join(results))
            return 0 if help_ok and help_s <= HELP_TARGET_S else 1
        osbatch("up")
        osbatch("deploy", "--local")
        started_here = True
    try:
        jobs_s, jobs_ok = timed(
            [*OSBATCH, "jobs"], lambda r: "JOB" in r.stdout or "no jobs" in r.stdout, args.runs
        )
    finally:
        if started_here:
            osbatch("down")
    print(f"osbatch jobs: {jobs_s:.3f} s, {jobs_s / baseline:.1f}x python -c pass")
    results.append(line("osbatch jobs", jobs_s, JOBS_TARGET_S, jobs_ok))
    print("\n".join(results))
    return 0 if all(result.endswith("PASS") for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
