"""`osbatch report <job> --html out.html`: one self-contained page (inline CSS and SVG, no CDN, works
offline) with the records funnel, the timeline, ingest throughput, dead letters by reason with sample
lines, and the remote jobs.

Charts are SVG drawn here rather than by a charting library: a library would have to be inlined into every
page (the page must open offline), and four bar and line charts are a few dozen lines of SVG. Each chart
element carries its figure in `data-value`; a short script measures the drawn bars once the page has
rendered (`data-px`), so a headless browser test reads what was laid out, not only what was written.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from cli.report_data import ReportData, Span

WIDTH = 760
BAR_HEIGHT = 22
LABEL_WIDTH = 270
COLOURS = {"in": "#4c78a8", "valid": "#72b7b2", "indexed": "#54a24b", "dead": "#e45756", "other": "#9d755d"}

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:820px;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border-bottom:1px solid #eee;padding:4px;
text-align:left;vertical-align:top}code,pre{font-size:.85em;white-space:pre-wrap;word-break:break-all}
.facts td:first-child{color:#666;width:12em}svg text{font-size:12px}.empty{color:#888}
"""

# Measures each drawn bar after layout, for the browser test (and anyone checking the page's figures).
MEASURE = """
window.addEventListener('load',()=>{for(const bar of document.querySelectorAll('[data-value]')){
bar.setAttribute('data-px',Math.round(bar.getBoundingClientRect().width))}
document.body.setAttribute('data-rendered','yes')});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def bar_chart(chart: str, rows: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """Horizontal bars: (label, value, colour key); scaled to the largest value."""
    if not rows:
        return '<p class="empty">nothing to show</p>'
    top = max((value for _, value, _ in rows), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 110  # room for the figure after the bar
    height = len(rows) * (BAR_HEIGHT + 6) + 6
    parts = [f'<svg id="{_e(chart)}" width="{WIDTH}" height="{height}" role="img" aria-label="{_e(chart)}">']
    for row, (label, value, colour) in enumerate(rows):
        y = 6 + row * (BAR_HEIGHT + 6)
        width = max(value / top * span, 1 if value else 0)
        parts.append(
            f'<text x="0" y="{y + 15}">{_e(label)}</text>'
            f'<rect class="bar" data-label="{_e(label)}" data-value="{value:g}" x="{LABEL_WIDTH}" y="{y}" '
            f'width="{width:.1f}" height="{BAR_HEIGHT}" fill="{COLOURS.get(colour, colour)}"/>'
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}">{value:,.6g}{unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline_chart(spans: Sequence[Span]) -> str:
    """A Gantt chart: one row per state name, a bar per time the job was in it."""
    if not spans:
        return '<p class="empty">no timeline recorded (the workflow history is not available)</p>'
    names = list(dict.fromkeys(span.name for span in spans))
    end = max(span.end for span in spans) or 1
    scale = (WIDTH - LABEL_WIDTH - 20) / end
    height = len(names) * (BAR_HEIGHT + 6) + 30
    parts = [f'<svg id="timeline" width="{WIDTH}" height="{height}" role="img" aria-label="timeline">']
    for row, name in enumerate(names):
        y = 6 + row * (BAR_HEIGHT + 6)
        total = sum(span.end - span.start for span in spans if span.name == name)
        parts.append(f'<text x="0" y="{y + 15}">{_e(name)} ({total:.1f} s)</text>')
        for span in (s for s in spans if s.name == name):
            parts.append(
                f'<rect class="span" data-label="{_e(name)}" data-value="{span.end - span.start:.3f}" '
                f'x="{LABEL_WIDTH + span.start * scale:.1f}" y="{y}" '
                f'width="{max((span.end - span.start) * scale, 1):.1f}" height="{BAR_HEIGHT}" '
                'fill="#4c78a8"/>'
            )
    axis = 6 + len(names) * (BAR_HEIGHT + 6) + 14
    parts.append(f'<text x="{LABEL_WIDTH}" y="{axis}">0 s</text>')
    parts.append(f'<text x="{WIDTH - 60}" y="{axis}">{end:.1f} s</text></svg>')
    return "".join(parts)


def throughput_chart(chunks: Sequence[tuple[float, int]]) -> str:
    """Records indexed so far against time, one point per finished ingest chunk."""
    if not chunks:
        return '<p class="empty">no ingest chunk has finished</p>'
    first = min(when for when, _ in chunks)
    last = max(when for when, _ in chunks)
    total = sum(indexed for _, indexed in chunks) or 1
    width, height = WIDTH - 60, 200
    spread = (last - first) or 1
    points, running = [(50.0, height - 20.0)], 0
    for when, indexed in chunks:
        running += indexed
        x = 50 + (when - first) / spread * (width - 60)
        y = height - 20 - running / total * (height - 40)
        points.append((x, y))
    rate = total / spread if last > first else float(total)
    polyline = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (
        f'<svg id="throughput" width="{WIDTH}" height="{height}" role="img" aria-label="ingest throughput">'
        f'<polyline class="line" data-value="{total}" points="{polyline}" fill="none" stroke="#54a24b" '
        f'stroke-width="2"/><text x="50" y="{height - 4}">{first:.1f} s</text>'
        f'<text x="{width - 40}" y="{height - 4}">{last:.1f} s</text>'
        f'<text x="0" y="14">{total:,} records indexed by {len(chunks)} chunk(s), '
        f"{rate:,.1f} records/s</text>"
        "</svg>"
    )


def funnel_rows(data: ReportData) -> list[tuple[str, float, str]]:
    source = data.report or data.job
    rows = [("records in", float(source.get("records_in") or 0), "in")]
    if data.job.get("valid") is not None:
        rows.append(("valid (prepared)", float(data.job["valid"]), "valid"))
    rows.append(("indexed", float(source.get("indexed") or 0), "indexed"))
    by_stage: dict[str, int] = {}
    for group in data.dead_letters:
        by_stage[group.stage] = by_stage.get(group.stage, 0) + group.count
    for stage, count in sorted(by_stage.items()):
        rows.append((f"dead-lettered: {stage}", float(count), "dead"))
    if not by_stage and source.get("dead_lettered"):
        rows.append(("dead-lettered", float(source["dead_lettered"]), "dead"))
    if source.get("unaccounted"):
        rows.append(("unaccounted", float(source["unaccounted"]), "other"))
    return rows


def _facts(data: ReportData) -> str:
    job = data.job
    keys = ("pipeline", "state", "reason", "source", "created_at", "submitted_at", "finished_at")
    rows = "".join(
        f"<tr><td>{_e(key)}</td><td>{_e(job[key])}</td></tr>"
        for key in keys
        if job.get(key) not in (None, "")
    )
    return f'<table class="facts">{rows}</table>'


def _dead_letter_table(data: ReportData) -> str:
    if not data.dead_letters:
        return '<p class="empty">no dead letters</p>'
    rows = "".join(
        f'<tr class="dead-letter"><td>{_e(group.stage)}</td><td>{_e(group.reason)}</td><td>{group.count}</td>'
        f"<td><pre>{_e(chr(10).join(group.samples))}</pre></td></tr>"
        for group in data.dead_letters
    )
    return f"<table><tr><th>stage</th><th>reason</th><th>records</th><th>sample lines</th></tr>{rows}</table>"


def _remote_table(data: ReportData) -> str:
    if not data.remotes:
        return '<p class="empty">no remote inference job</p>'
    rows = "".join(
        f'<tr class="remote"><td>{index}</td><td><code>{_e(remote["id"])}</code></td>'
        f"<td><code>{_e(remote.get('arn') or '')}</code></td><td>{_e(remote.get('records') or '?')}</td></tr>"
        for index, remote in enumerate(data.remotes, start=1)
    )
    return f"<table><tr><th>#</th><th>name</th><th>ARN</th><th>records sent</th></tr>{rows}</table>"


def _versus_table(data: ReportData) -> str:
    """The plan's estimate Prepare recorded beside what the job came to (the rows `osbatch status` shows)."""
    from cli.job_status import VERSUS_HEADERS, versus_rows

    rows = versus_rows(data.job)
    if not rows:
        return (
            '<p class="empty">this job recorded no estimate (it ran before osbatch recorded one): run '
            "<code>osbatch plan</code> on the file to see one</p>"
        )
    head = "".join(f"<th>{_e(header)}</th>" for header in VERSUS_HEADERS)
    body = "".join(
        '<tr class="versus">' + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table id="estimate-and-actual"><tr>{head}</tr>{body}</table>'


def _dead_letter_chart(data: ReportData) -> str:
    rows = [
        (f"{group.stage}: {group.reason[:40]}", float(group.count), "dead") for group in data.dead_letters
    ]
    return bar_chart("dead-letters-by-reason", rows, " records")


def render(data: ReportData) -> str:
    title = f"osbatch job {data.job_id}"
    sections = [
        f"<h1>{_e(title)}</h1>",
        _facts(data),
        "<h2>Records</h2>",
        bar_chart("funnel", funnel_rows(data), " records"),
        "<h2>Timeline</h2>",
        timeline_chart(data.spans),
        "<h2>Ingest throughput</h2>",
        throughput_chart(data.chunks),
        "<h2>Dead letters by reason</h2>",
        _dead_letter_chart(data),
        _dead_letter_table(data),
        "<h2>Remote inference jobs</h2>",
        _remote_table(data),
        "<h2>Estimate and actual</h2>",
        _versus_table(data),
        f'<script type="application/json" id="report-json">{_e(json.dumps(data.report or {}))}</script>',
    ]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style><script>{MEASURE}</script></head><body>{''.join(sections)}</body></html>"
    )
