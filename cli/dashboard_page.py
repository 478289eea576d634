"""The dashboard as one self-contained page: a panel per widget, a sparkline (inline SVG) per series.

Like the report page (cli/report_page.py): no CDN, opens offline; a widget without data is marked
`data-has-data="no"` and lists what it asked for, so a browser test (or a person) sees which metric the
functions did not emit under the name and dimensions the dashboard expects.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from cli.dashboard import Series, Widget

SPARK_WIDTH, SPARK_HEIGHT = 240, 40

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}
.grid{display:flex;flex-wrap:wrap;gap:10px}.widget{border:1px solid #ddd;border-radius:4px;padding:8px;
width:360px}.widget h3{font-size:.95em;margin:0 0 6px}.widget[data-has-data=no]{border-color:#e45756;
background:#fff5f5}.series{font-size:.8em;margin:4px 0}.text{width:100%;border:none;color:#555;
font-size:.85em;white-space:pre-wrap}.none{color:#e45756}.derived{color:#888}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def sparkline(points: Sequence[tuple[datetime, float]]) -> str:
    if not points:
        return ""
    first, last = points[0][0], points[-1][0]
    spread = (last - first).total_seconds() or 1.0
    top = max(value for _, value in points)
    low = min(0.0, min(value for _, value in points))
    height = (top - low) or 1.0
    coordinates = " ".join(
        f"{(when - first).total_seconds() / spread * (SPARK_WIDTH - 4) + 2:.1f},"
        f"{SPARK_HEIGHT - 2 - (value - low) / height * (SPARK_HEIGHT - 4):.1f}"
        for when, value in points
    )
    if len(points) == 1:
        x, y = coordinates.split(",")
        return (
            f'<svg width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}">'
            f'<circle class="point" cx="{x}" cy="{y}" r="3" fill="#4c78a8"/></svg>'
        )
    return (
        f'<svg width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}"><polyline class="line" points="{coordinates}" '
        'fill="none" stroke="#4c78a8" stroke-width="1.5"/></svg>'
    )


def _series(series: Series) -> str:
    if series.derived:
        return f'<div class="series derived">{_e(series.label)}: derived from the series above</div>'
    stat = (
        f"{series.stat} (shown as {series.shown_as}: no percentiles locally)"
        if series.shown_as
        else series.stat
    )
    name = f"{series.namespace} {series.metric} {stat}"
    if series.dimensions:
        name += " " + ", ".join(f"{k}={v}" for k, v in series.dimensions.items())
    if not series.has_data:
        why = f" ({series.error})" if series.error else ""
        return (
            f'<div class="series" data-points="0"><span class="none">no data</span> {_e(name)}{_e(why)}</div>'
        )
    values = [value for _, value in series.points]
    return (
        f'<div class="series" data-points="{len(values)}">{_e(series.label)} '
        f"(latest {values[-1]:,.6g}, max {max(values):,.6g})<br>{sparkline(series.points)}"
        f"<br><small>{_e(name)}</small></div>"
    )


def _widget(widget: Widget) -> str:
    if widget.kind == "text":
        return f'<div class="widget text">{_e(widget.text)}</div>'
    flag = "yes" if widget.has_data else "no"
    body = "".join(_series(series) for series in widget.series)
    return (
        f'<div class="widget" data-section="{_e(widget.section)}" data-widget="{_e(widget.title)}" '
        f'data-has-data="{flag}">'
        f"<h3>{_e(widget.title)}</h3>{body}</div>"
    )


def render(name: str, widgets: Sequence[Widget]) -> str:
    metric_widgets = [w for w in widgets if w.kind == "metric"]
    with_data = sum(w.has_data for w in metric_widgets)
    summary = f"{with_data} of {len(metric_widgets)} metric widgets have data"
    panels = "".join(_widget(widget) for widget in widgets)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(name)}</title>'
        f"<style>{STYLE}</style></head><body><h1>CloudWatch dashboard {_e(name)}</h1>"
        f'<p id="summary">{_e(summary)}</p><div class="grid">{panels}</div></body></html>'
    )
