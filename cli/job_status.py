"""`osbatch status <job>`: one job as a person reads it, or as JSON.

A summary (what, state, why), the counts, the remote inference jobs as a table, the timeline, and where the
dead letters and the report are. rich renders it at a terminal; anything else (a pipe, a file, CI) gets
the same sections as plain lines, so scripts that grep them keep working.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cli.views import HIDDEN, table

COUNTS = (
    ("records in", "records_in"),
    ("valid", "valid"),
    ("indexed", "indexed"),
    ("unchanged", "unchanged"),
    ("dead-lettered", "dead_lettered"),
    ("unaccounted", "unaccounted"),
    ("duplicate ids", "duplicate_ids"),
    # A chunking pipeline's passages (absent otherwise): sent = embedded + dead-lettered once it ends.
    ("passages sent", "passages_sent"),
    ("passages embedded", "passages_embedded"),
    ("passages dead-lettered", "passages_dead_lettered"),
    ("stale (earlier version)", "stale"),
    ("deleted (mirror)", "deleted"),
)
# The plan's estimate (Prepare) beside what the job came to (Finalize, FailJob): JSON text on the job item.
VERSUS_HEADERS = ("", "ESTIMATE", "ACTUAL")
ESTIMATE_AND_ACTUAL = ("estimate", "actual")
TIMELINE = (("created", "created_at"), ("submitted", "submitted_at"), ("finished", "finished_at"))
REMOTE_HEADERS = ("#", "REMOTE JOB", "OUTPUT")
FACTS = (("pipeline", "pipeline"), ("state", "state"), ("reason", "reason"), ("source", "source"))
# Fields the sections above show; any other field of the item is listed under "more", so none is lost.
SHOWN = {
    "job_id",
    *(key for _, key in FACTS + COUNTS + TIMELINE),
    "remote_jobs",
    "remote_jobs_done",
    "remote_status",
    "polls",
    "chunks",
    "report",
    "execution_arn",
    *ESTIMATE_AND_ACTUAL,
}


@dataclass(frozen=True)
class JobSummary:
    title: str
    facts: list[tuple[str, str]]
    counts: list[tuple[str, str]]
    remote_headers: Sequence[str]
    remote_rows: list[list[str]]
    remote_progress: str
    timeline: list[tuple[str, str]]
    places: list[tuple[str, str]] = field(default_factory=list)
    more: list[tuple[str, str]] = field(default_factory=list)
    versus: list[list[str]] = field(default_factory=list)  # estimate against actual, VERSUS_HEADERS


def decoded(job: dict[str, Any]) -> dict[str, Any]:
    """The job item with its estimate and actual as objects (they are stored as JSON text)."""
    out = dict(job)
    for key in ESTIMATE_AND_ACTUAL:
        if isinstance(out.get(key), str):
            with contextlib.suppress(ValueError):  # not JSON: shown as stored
                out[key] = json.loads(out[key])
    return out


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    minutes, second = divmod(round(value), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m{second:02d}s" if hours else f"{minute}m{second:02d}s"


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def versus_rows(job: dict[str, Any]) -> list[list[str]]:
    """Estimate and actual side by side: records sent to the model, tokens, remote jobs, wall time, cost."""
    estimate, actual = decoded(job).get("estimate"), decoded(job).get("actual")
    if not isinstance(estimate, dict) and not isinstance(actual, dict):
        return []
    estimate = estimate if isinstance(estimate, dict) else {}
    actual = actual if isinstance(actual, dict) else {}
    tokens_note = actual.get("input_tokens_from", "")
    usd = estimate.get("usd")
    rows = [
        ["sent to the model", _number(estimate.get("sent_to_model")), _number(actual.get("sent_to_model"))],
        ["input tokens", _number(estimate.get("input_tokens")), _number(actual.get("input_tokens"))],
        ["remote jobs", _number(estimate.get("remote_jobs")), _number(actual.get("remote_jobs"))],
        ["wall time", _seconds(estimate.get("wall_seconds")), _seconds(actual.get("wall_seconds"))],
        ["cost (USD)", f"{usd:.4f}" if isinstance(usd, int | float) else "-", "-"],
    ]
    if tokens_note and actual.get("input_tokens") is None:
        rows[1][2] = f"- ({tokens_note})"
    elif tokens_note:
        rows[1][2] += f" ({tokens_note})"
    if estimate.get("prices_of"):
        rows[4][1] += f" (prices of {estimate['prices_of']})"
    return rows


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _elapsed(start: Any, end: Any) -> str:
    began, ended = _when(start), _when(end)
    if began is None or ended is None:
        return ""
    seconds = int((ended - began).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"+{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"+{minutes}m{seconds:02d}s"


def summarize(job: dict[str, Any], *, dead_letters: str, report: str) -> JobSummary:
    """`dead_letters` and `report` are the job's S3 places (the stack's buckets, osbatch.contracts' keys)."""
    facts = [(label, str(job[key])) for label, key in FACTS if job.get(key) not in (None, "")]
    counts = [(label, str(job[key])) for label, key in COUNTS if job.get(key) is not None]
    remotes = job.get("remote_jobs") or []
    rows = [
        [str(position), str(ref.get("arn") or ref.get("id", "")), str(ref.get("output_uri", ""))]
        for position, ref in enumerate(remotes, start=1)
    ]
    progress = ""
    if remotes:
        progress = f"{job.get('remote_jobs_done', 0)}/{len(remotes)} done"
        if job.get("remote_status"):
            progress += f", last status {job['remote_status']}"
        if job.get("polls") is not None:
            progress += f", {job['polls']} polls"
    created = job.get("created_at")
    timeline = [
        (label, f"{job[key]}  {_elapsed(created, job[key]) if key != 'created_at' else ''}".rstrip())
        for label, key in TIMELINE
        if job.get(key)
    ]
    if job.get("chunks") is not None:
        timeline.append(("ingest chunks", str(job["chunks"])))
    report_place = str(job.get("report") or f"{report} (written when the job ends)")
    places = [("dead letters", dead_letters), ("report", report_place)]
    if job.get("execution_arn"):
        places.append(("workflow", str(job["execution_arn"])))
    return JobSummary(
        title=f"job {job['job_id']}",
        facts=facts,
        counts=counts,
        remote_headers=REMOTE_HEADERS,
        remote_rows=rows,
        remote_progress=progress,
        timeline=timeline,
        places=places,
        more=[(key, str(job[key])) for key in sorted(set(job) - SHOWN - HIDDEN)],
        versus=versus_rows(job),
    )


def _pairs(pairs: list[tuple[str, str]]) -> str:
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in pairs)


def plain_text(summary: JobSummary) -> str:
    """The summary for pipes and logs: one section per heading, two-space indents, no colour."""
    parts = [summary.title, _pairs(summary.facts)]
    if summary.counts:
        parts += ["counts", _pairs(summary.counts)]
    if summary.remote_rows:
        remote_table = table(summary.remote_rows, summary.remote_headers)
        parts += [
            f"remote jobs ({summary.remote_progress})",
            "\n".join(f"  {line}" for line in remote_table.splitlines()),
        ]
    else:
        parts += ["remote jobs", "  none yet"]
    if summary.versus:
        versus = table(summary.versus, VERSUS_HEADERS)
        parts += ["estimate against actual", "\n".join(f"  {line}" for line in versus.splitlines())]
    if summary.timeline:
        parts += ["timeline", _pairs(summary.timeline)]
    parts += ["where", _pairs(summary.places)]
    if summary.more:
        parts += ["more", _pairs(summary.more)]
    return "\n".join(parts)


def print_rich(summary: JobSummary) -> None:
    """The summary at a terminal: rich tables (rich.readthedocs.io, "Tables")."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{summary.title}[/bold]")

    def pairs(title: str, rows: list[tuple[str, str]]) -> None:
        grid = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        for label, value in rows:
            grid.add_row(label, value)
        console.print(grid)

    pairs("", summary.facts)
    if summary.counts:
        pairs("counts", summary.counts)
    remote = Table(title=f"remote jobs ({summary.remote_progress or 'none yet'})", title_justify="left")
    for header in summary.remote_headers:
        remote.add_column(header, overflow="fold")
    for row in summary.remote_rows:
        remote.add_row(*row)
    if summary.remote_rows:
        console.print(remote)
    else:
        console.print("remote jobs: none yet")
    if summary.versus:
        versus = Table(title="estimate against actual", title_justify="left")
        for header in VERSUS_HEADERS:
            versus.add_column(header, overflow="fold")
        for row in summary.versus:
            versus.add_row(*row)
        console.print(versus)
    if summary.timeline:
        pairs("timeline", summary.timeline)
    pairs("where", summary.places)
    if summary.more:
        pairs("more", summary.more)
