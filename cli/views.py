"""Plain-text tables for the terminal (cli/job_status.py: one job in detail)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from osbatch.dal.wakeups import WAKE_TOKEN

# Internal: the parked workflow's task token is a capability to resume it, and long; not for display.
HIDDEN = {"item", WAKE_TOKEN}

JOB_COLUMNS = (
    ("JOB", "job_id"),
    ("STATE", "state"),
    ("IN", "records_in"),
    ("INDEXED", "indexed"),
    ("DEAD", "dead_lettered"),
    ("CREATED", "created_at"),
    ("SOURCE", "source"),
)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(header) for header in headers]] + [
        ["" if value is None else str(value) for value in row] for row in rows
    ]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def jobs_table(jobs: Sequence[dict[str, Any]]) -> str:
    if not jobs:
        return "no jobs yet"
    return table(
        [[job.get(key) for _, key in JOB_COLUMNS] for job in jobs], [title for title, _ in JOB_COLUMNS]
    )
