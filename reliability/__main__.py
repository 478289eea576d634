"""`make reliability`: run the scenarios on the local runtime and print one table.

    .venv/bin/python -m reliability [--only a b] [--scale N]

The local runtime is started if it is not running, and stopped again at the end in that case. Exits 1 if
any scenario lost or duplicated a record, or a job did not end.
"""

from __future__ import annotations

import argparse
import sys

from bench.machine import cpu_summary
from local.runtime import local_runtime
from reliability.harness import Harness
from reliability.scenarios import SCENARIOS, Row

HEADER = (
    "scenario",
    "fault injected",
    "records in",
    "indexed",
    "dead-lettered",
    "lost",
    "duplicated",
    "time",
)


def table(rows: list[Row]) -> list[str]:
    lines = [" | ".join(HEADER), "|".join("---" for _ in HEADER)]
    for row in rows:
        t = row.tally
        cells = (row.scenario, row.fault, t.records_in, t.indexed, t.dead_lettered, t.lost, t.duplicated)
        lines.append(" | ".join(str(cell) for cell in cells) + f" | {row.seconds:.0f} s")
    return lines


def details(row: Row) -> list[str]:
    t = row.tally
    lines = [f"{row.scenario}: jobs {row.states}"]
    lines += [f"  dead-letter reason x{n}: {reason}" for reason, n in t.reasons.most_common()]
    lines += [f"  LOST {example}" for example in t.lost_examples[:5]]
    lines += [f"  DUPLICATED {example}" for example in t.duplicated_examples[:5]]
    lines += [f"  {note}" for note in row.notes]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), default=sorted(SCENARIOS))
    parser.add_argument("--scale", type=int, default=1, help="multiplies each scenario's good records")
    args = parser.parse_args(argv)
    print(f"cpu: {cpu_summary()}")
    runtime = local_runtime()
    was_up = runtime.is_up()
    runtime.up(progress=lambda _: None)
    try:
        harness = Harness(runtime)
        rows: list[Row] = []
        failed: list[str] = []
        for name in args.only:
            try:
                row = SCENARIOS[name](harness, args.scale)
            except Exception as error:  # one broken scenario must not hide the others' rows
                print(f"scenario {name} could not run: {type(error).__name__}: {error}", flush=True)
                failed.append(name)
                continue
            rows.append(row)
            print("\n".join(details(row)), flush=True)
    finally:
        if not was_up:
            runtime.down(progress=lambda _: None)
    print("\n".join(table(rows)))
    for row in rows:
        ended = "NOT ENDED" not in row.states.values()  # a job that never ended fails its own row only
        print(
            f"{row.scenario}: lost {row.tally.lost}, duplicated {row.tally.duplicated} (target 0, 0): "
            f"{'PASS' if row.clean and ended else 'FAIL'}"
        )
    for name in failed:
        print(f"scenario {name}: did not run: FAIL")
    every_ended = all("NOT ENDED" not in row.states.values() for row in rows)
    return 0 if all(row.clean for row in rows) and every_ended and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
