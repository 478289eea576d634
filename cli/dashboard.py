"""`osbatch dashboard`: the stack's own CloudWatch dashboard, its widgets filled from CloudWatch.

The definition is the deployed one: the dashboard resource of the stack's template, read back from
CloudWatch (GetDashboard), never a copy kept here. Each metric widget's series are fetched with
GetMetricData over the last hour:
- a metric array `[namespace, name, dimension, value, ..., {options}]` ("Dashboard body structure and
  syntax", docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html)
  is one MetricStat query;
- a Metrics Insights query `SELECT FUNC(Metric) FROM namespace` is evaluated here over every dimension
  set ListMetrics knows for that metric, because the local CloudWatch (moto) answers such a query with
  the sum of every metric it holds, whatever the query names, which would hide a misnamed metric;
- other math expressions (`FILL(m1,0) / PERIOD(m1)`) are derived from the widget's own metrics, which are
  shown; they are listed as derived and not evaluated.
A widget has data when any of its series has a datapoint; `gaps` names those without.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

LOOKBACK = timedelta(hours=1)
PERIOD_SECONDS = 60
INSIGHTS = re.compile(r"^SELECT\s+(SUM|AVG|MAX|MIN|COUNT)\((\w+)\)\s+FROM\s+(\S+)\s*$", re.IGNORECASE)
# Extended statistics: percentiles and trimmed means, e.g. p99, tm90, p99.9.
PERCENTILE = re.compile(r"^(p|tm|wm|tc|ts)\d", re.IGNORECASE)
STATS = {"SUM": "Sum", "AVG": "Average", "MAX": "Maximum", "MIN": "Minimum", "COUNT": "SampleCount"}


@dataclass
class Series:
    label: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    points: list[tuple[datetime, float]] = field(default_factory=list)
    derived: bool = False  # a math expression over the widget's other series: not evaluated here
    insights: bool = False  # a Metrics Insights query: every dimension set of the metric
    shown_as: str = ""  # the statistic queried instead of `stat`, where the store lacks it
    error: str = ""  # why GetMetricData gave nothing for it

    @property
    def has_data(self) -> bool:
        return bool(self.points)


@dataclass
class Widget:
    kind: str  # "metric" or "text"
    title: str
    series: list[Series] = field(default_factory=list)
    text: str = ""
    section: str = ""  # the text widget above it: which queue, workflow or function it charts

    @property
    def has_data(self) -> bool:
        return any(series.has_data for series in self.series)


def dashboard_body(cloudformation: Any, cloudwatch: Any, stack_name: str) -> tuple[str, dict[str, Any]]:
    """The name and body of the stack's dashboard, as deployed."""
    template = cloudformation.get_template(StackName=stack_name)["TemplateBody"]
    if isinstance(template, str):
        template = json.loads(template)
    names = [
        resource.get("Properties", {}).get("DashboardName")
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::CloudWatch::Dashboard"
    ]
    if not names:
        raise LookupError(f"stack {stack_name} has no CloudWatch dashboard")
    name = names[0]
    if not isinstance(name, str):  # a computed name: the one dashboard CloudWatch lists for the stack
        listed = [entry["DashboardName"] for entry in cloudwatch.list_dashboards()["DashboardEntries"]]
        name = next(entry for entry in listed if stack_name in entry)
    return name, json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])


def widget_series(properties: dict[str, Any]) -> list[Series]:
    """The series a metric widget's `metrics` array names, in order."""
    default_stat = str(properties.get("stat", "Average"))
    found = []
    for entry in properties.get("metrics", []):
        options = entry[-1] if entry and isinstance(entry[-1], dict) else {}
        plain = [part for part in entry if not isinstance(part, dict)]
        if not plain:  # an expression
            expression = str(options.get("expression", ""))
            label = str(options.get("label", expression))
            match = INSIGHTS.match(expression)
            if match:
                function, metric, namespace = match.groups()
                found.append(Series(label, namespace, metric, {}, STATS[function.upper()], insights=True))
            else:
                found.append(Series(label, "", expression, {}, "", derived=True))
            continue
        namespace, metric, *pairs = (str(part) for part in plain)
        dimensions = dict(zip(pairs[0::2], pairs[1::2], strict=False))
        stat = str(options.get("stat", default_stat))
        found.append(Series(str(options.get("label", metric)), namespace, metric, dimensions, stat))
    return found


def read_widgets(body: dict[str, Any]) -> list[Widget]:
    widgets, section = [], ""
    for widget in body.get("widgets", []):
        properties = widget.get("properties", {})
        if widget.get("type") == "metric":
            title = str(properties.get("title", ""))
            widgets.append(Widget("metric", title, widget_series(properties), section=section))
        elif widget.get("type") == "text":
            section = str(properties.get("markdown", "")).strip().lstrip("#").strip()
            widgets.append(Widget("text", "", text=section))
    return widgets


def fill(
    widgets: list[Widget],
    cloudwatch: Any,
    *,
    percentiles: bool = True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Each series' datapoints from CloudWatch over LOOKBACK. percentiles=False: the store computes no
    percentile statistics (moto answers p50/p90/p99 with no value), so such series are queried as Average
    and say so."""
    # A minute ahead: CloudWatch (and moto) cut at EndTime whole seconds, which would drop this second's data.
    end = now() + timedelta(minutes=1)
    start = end - LOOKBACK
    for widget in widgets:
        for series in widget.series:
            if series.derived:
                continue
            if not percentiles and PERCENTILE.match(series.stat):
                series.shown_as = "Average"
            dimension_sets = _dimension_sets(cloudwatch, series) if series.insights else [series.dimensions]
            series.points = _query(cloudwatch, series, dimension_sets, start, end)


def _dimension_sets(cloudwatch: Any, series: Series) -> list[dict[str, str]]:
    listed = cloudwatch.list_metrics(Namespace=series.namespace, MetricName=series.metric)["Metrics"]
    return [{d["Name"]: d["Value"] for d in metric.get("Dimensions", [])} for metric in listed]


def _query(
    cloudwatch: Any, series: Series, dimension_sets: list[dict[str, str]], start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    if not dimension_sets:
        return []
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": series.namespace,
                    "MetricName": series.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                },
                "Period": PERIOD_SECONDS,
                "Stat": series.shown_as or series.stat,
            },
        }
        for index, dimensions in enumerate(dimension_sets)
    ]
    from botocore.exceptions import ClientError

    try:
        response = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
    except ClientError as error:  # one series the store cannot answer must not hide the others
        series.error = str(error)
        return []
    results = response["MetricDataResults"]
    combined: dict[datetime, float] = {}
    for result in results:
        for when, value in zip(result["Timestamps"], result["Values"], strict=True):
            stat = series.shown_as or series.stat
            if stat == "Maximum":
                combined[when] = max(combined.get(when, value), value)
            elif stat == "Minimum":
                combined[when] = min(combined.get(when, value), value)
            else:  # Sum and SampleCount add up; an Average over dimension sets is shown summed too
                combined[when] = combined.get(when, 0.0) + value
    return sorted(combined.items())


def gaps(widgets: list[Widget]) -> list[str]:
    """The metric widgets without any datapoint, each with the series it asked for."""
    return [
        f"{widget.section + ' / ' if widget.section else ''}{widget.title}: "
        + ", ".join(
            f"{s.namespace}/{s.metric} {s.dimensions or ''}".strip() for s in widget.series if not s.derived
        )
        for widget in widgets
        if widget.kind == "metric" and not widget.has_data
    ]
