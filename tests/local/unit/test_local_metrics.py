"""Metrics reach the local CloudWatch as on AWS, and the dashboard reader finds a widget that charts a
metric nobody emits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from moto import mock_aws

from cli.dashboard import fill, gaps, read_widgets
from local.aws import metrics

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def powertools_line(**values: int) -> str:
    """One EMF log line exactly as Powertools' Metrics writes it (its serializer, not a copy)."""
    emitter = Metrics(namespace="osbatch", service="finalize")
    emitter.add_dimension(name="pipeline", value="docs")
    for name, value in values.items():
        emitter.add_metric(name=name, unit=MetricUnit.Count, value=value)
    line = json.dumps(emitter.serialize_metric_set())
    emitter.clear_metrics()
    return line


def test_an_emf_line_becomes_metrics_with_its_dimensions(cloudwatch: Any) -> None:
    # Given the log line a function writes when it records two metrics
    line = powertools_line(JobsCompleted=1, RecordsIndexed=2640)
    # When the local log stream passes it on, as CloudWatch Logs extracts EMF on AWS
    metrics.publish_emf(line, ACCOUNT, REGION)
    # Then CloudWatch lists both under the namespace, with the function's dimensions
    listed = cloudwatch.list_metrics(Namespace="osbatch")["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == ["JobsCompleted", "RecordsIndexed"]
    assert {(d["Name"], d["Value"]) for d in listed[0]["Dimensions"]} == {
        ("service", "finalize"),
        ("pipeline", "docs"),
    }


def test_other_log_lines_are_not_metrics() -> None:
    assert metrics.emf_metrics('{"level": "INFO", "message": "job started"}') == []
    assert metrics.emf_metrics("START RequestId: 1 Version: $LATEST") == []


def dashboard(*expressions: str) -> dict[str, Any]:
    return {
        "widgets": [
            {"type": "text", "properties": {"markdown": "### Jobs"}},
            *(
                {
                    "type": "metric",
                    "properties": {
                        "title": expression,
                        "metrics": [[{"expression": expression, "label": "x"}]],
                    },
                }
                for expression in expressions
            ),
            {
                "type": "metric",
                "properties": {
                    "title": "Lambda",
                    "stat": "Sum",
                    "metrics": [
                        ["AWS/Lambda", "Invocations", "FunctionName", "osbatch-finalize", {"label": "calls"}],
                        [{"expression": "FILL(m1,0) / PERIOD(m1)", "label": "TPS"}],
                    ],
                },
            },
        ]
    }


def test_a_widget_charting_a_metric_nobody_emits_is_named(cloudwatch: Any) -> None:
    # Given metrics as the functions and the Lambda service emit them
    metrics.publish_emf(powertools_line(JobsStarted=1), ACCOUNT, REGION)
    metrics.lambda_invocation("osbatch-finalize", ACCOUNT, REGION, duration_ms=12.5, error=False)
    # And a dashboard charting them, plus one widget whose metric name is misspelt
    widgets = read_widgets(
        dashboard("SELECT SUM(JobsStarted) FROM osbatch", "SELECT SUM(JobStarted) FROM osbatch")
    )
    # When its widgets are filled from CloudWatch
    fill(widgets, cloudwatch)
    # Then the emitted metrics have data, the misspelt one has none and is the only gap named
    by_title = {w.title: w for w in widgets if w.kind == "metric"}
    assert by_title["SELECT SUM(JobsStarted) FROM osbatch"].series[0].points[0][1] == 1
    assert by_title["Lambda"].series[0].points[0][1] == 1 and by_title["Lambda"].series[1].derived
    assert gaps(widgets) == ["Jobs / SELECT SUM(JobStarted) FROM osbatch: osbatch/JobStarted"]


def test_a_dimension_the_functions_do_not_set_is_a_gap(cloudwatch: Any) -> None:
    metrics.lambda_invocation("osbatch-finalize", ACCOUNT, REGION, duration_ms=1, error=False)
    body = {
        "widgets": [
            {
                "type": "metric",
                "properties": {
                    "title": "other",
                    "metrics": [["AWS/Lambda", "Invocations", "FunctionName", "osbatch-other"]],
                },
            }
        ]
    }
    widgets = read_widgets(body)
    fill(widgets, cloudwatch)
    assert gaps(widgets) == ["other: AWS/Lambda/Invocations {'FunctionName': 'osbatch-other'}"]


def test_an_ended_execution_counts_its_end_and_zero_for_the_others(cloudwatch: Any) -> None:
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from local.aws.patches.service_metrics import Sampler

    # Given a state machine whose execution is seen running, then succeeded
    started = datetime.now(UTC) - timedelta(seconds=3)
    execution = SimpleNamespace(
        exec_arn="arn:x:execution:jobs:1", exec_status=None, start_date=started, stop_date=None
    )
    machine = SimpleNamespace(
        arn="arn:aws:states:us-east-1:123456789012:stateMachine:jobs", executions=[execution]
    )
    backend = SimpleNamespace(account_id=ACCOUNT, region_name=REGION, state_machines=[machine])
    sampler = Sampler()
    sampler._executions(backend)
    execution.exec_status = SimpleNamespace(value="SUCCEEDED")
    execution.stop_date = started + timedelta(seconds=2)
    sampler._executions(backend)
    sampler._executions(backend)  # a third look adds nothing
    # Then Step Functions' metrics hold one start, one success, zero failures and its execution time
    listed = cloudwatch.list_metrics(Namespace="AWS/States")["Metrics"]
    names = sorted(m["MetricName"] for m in listed)
    assert names == [
        "ExecutionTime", "ExecutionsAborted", "ExecutionsFailed", "ExecutionsStarted", "ExecutionsSucceeded",
        "ExecutionsTimedOut",
    ]  # fmt: skip
    body = {
        "widgets": [
            {
                "type": "metric",
                "properties": {
                    "title": name,
                    "stat": "Sum",
                    "metrics": [["AWS/States", name, "StateMachineArn", machine.arn]],
                },
            }
            for name in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionTime")
        ]
    }
    widgets = read_widgets(body)
    fill(widgets, cloudwatch)
    assert [w.series[0].points[-1][1] for w in widgets] == [1, 1, 0, 2000]


def test_the_page_marks_the_widget_whose_metric_is_misnamed_and_a_zero_is_data(cloudwatch: Any) -> None:
    from cli.dashboard_page import render
    from tests.helpers import dashboard_widgets

    # Given Finalize's metrics after a successful job: JobsCompleted 1 and JobsFailed 0
    metrics.publish_emf(powertools_line(JobsCompleted=1, JobsFailed=0), ACCOUNT, REGION)
    metrics.lambda_invocation("osbatch-finalize", ACCOUNT, REGION, duration_ms=3, error=False)
    # And a dashboard charting them, plus a misspelt metric
    widgets = read_widgets(
        dashboard("SELECT SUM(JobsFailed) FROM osbatch", "SELECT SUM(JobFailed) FROM osbatch")
    )
    # When its widgets are filled and the page rendered
    fill(widgets, cloudwatch)
    shown = {w["data-widget"]: w["data-has-data"] for w in dashboard_widgets(render("osbatch", widgets))}
    # Then the failed-jobs graph has data (a 0 is a datapoint), and the misspelt one is marked empty
    assert shown == {
        "SELECT SUM(JobsFailed) FROM osbatch": "yes",
        "SELECT SUM(JobFailed) FROM osbatch": "no",
        "Lambda": "yes",
    }
