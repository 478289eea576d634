"""CloudWatch metrics in the local AWS, where AWS itself would put them.

- Embedded metric format: on AWS, CloudWatch Logs turns each EMF log line a function writes into metrics
  ("Specification: Embedded metric format", docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
  CloudWatch_Embedded_Metric_Format_Specification.html). Here every line a sandbox writes to its log
  group passes through `publish_emf`, so Powertools' metrics reach the emulator's CloudWatch.
- The services' own metrics the stack's dashboard charts: Lambda's Invocations, Errors, Duration and
  Throttles per FunctionName ("Types of metrics for Lambda functions", docs.aws.amazon.com/lambda/latest/
  dg/monitoring-metrics-types.html), SQS's per QueueName ("Available CloudWatch metrics for Amazon SQS",
  docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html)
  and Step Functions' per StateMachineArn ("Metrics for Step Functions", docs.aws.amazon.com/
  step-functions/latest/dg/procedure-cw-metrics.html), emitted by the patches where each event happens.

moto's CloudWatch backend is the store, in process: `aws cloudwatch get-metric-data` reads them back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

LOG = logging.getLogger(__name__)

LAMBDA = "AWS/Lambda"
SQS = "AWS/SQS"
STATES = "AWS/States"


def emf_metrics(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) for every metric and dimension set of one EMF log line; [] for any other."""
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return []
    try:
        document = json.loads(text)
        directives = document["_aws"]["CloudWatchMetrics"]
        timestamp = _naive_utc(datetime.fromtimestamp(int(document["_aws"]["Timestamp"]) / 1000, UTC))
    except (ValueError, KeyError, TypeError):
        return []
    found = []
    for directive in directives:
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [
                {"Name": name, "Value": str(document[name])} for name in dimension_set if name in document
            ]
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                if value is None:
                    continue
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Timestamp": timestamp,
                    "Unit": metric.get("Unit", "None"),
                }
                if isinstance(value, list):
                    datum["Values"] = [float(v) for v in value]
                else:
                    datum["Value"] = float(value)
                found.append((str(directive["Namespace"]), datum))
    return found


def publish_emf(line: str, account_id: str, region: str) -> None:
    for namespace, datum in emf_metrics(line):
        put(namespace, account_id, region, [datum])


def put(namespace: str, account_id: str, region: str, data: list[dict[str, Any]]) -> None:
    """Into moto's CloudWatch; a metric the emulator cannot store is logged, never raised into the caller."""
    try:
        cloudwatch_backends[account_id][region].put_metric_data(namespace, data)
    except Exception:  # a metric must never break the invocation, send or execution it describes
        LOG.exception("could not store %s metrics locally", namespace)


def datum(name: str, value: float, dimensions: Mapping[str, str], unit: str = "Count") -> dict[str, Any]:
    return {
        "MetricName": name,
        "Value": float(value),
        "Unit": unit,
        "Dimensions": [{"Name": key, "Value": str(val)} for key, val in dimensions.items()],
        "Timestamp": _naive_utc(datetime.now(UTC)),
    }


def _naive_utc(when: datetime) -> datetime:
    """moto's CloudWatch keeps naive UTC datetimes and compares query bounds with them."""
    return when.astimezone(UTC).replace(tzinfo=None)


def lambda_invocation(
    function_name: str, account_id: str, region: str, *, duration_ms: float, error: bool
) -> None:
    dimensions = {"FunctionName": function_name}
    put(
        LAMBDA,
        account_id,
        region,
        [
            datum("Invocations", 1, dimensions),
            datum("Errors", 1 if error else 0, dimensions),
            datum("Duration", duration_ms, dimensions, "Milliseconds"),
            datum("Throttles", 0, dimensions),
        ],
    )


def lambda_throttled(function_name: str, account_id: str, region: str) -> None:
    put(LAMBDA, account_id, region, [datum("Throttles", 1, {"FunctionName": function_name})])
