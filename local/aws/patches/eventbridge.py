"""EventBridge: S3 events with the real shape on the default bus, and delivery to the targets we use.

moto 5.2.5 gaps this closes:
- S3 -> EventBridge events say `eTag` (not `etag`), `reason: ObjectCreated` (not `PutObject`), reuse one
  fixed event id, and go to every bus instead of the default one;
- rule targets of type Lambda, Step Functions and SNS raise NotImplementedError;
- an SQS target without an input transformer gets a re-templated event that drops `account`;
- DISABLED rules still fire.
moto's pattern matcher already implements `prefix`, `suffix`, `wildcard`, `anything-but` (incl. nested
suffix/prefix) and `$or` on any field, e.g. detail.object.key
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html), so it is
used as is.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import time
import uuid
from typing import Any

from jsonpath_ng.ext import parse as jsonpath
from moto.awslambda.models import lambda_backends
from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.s3 import notifications as s3_notifications
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.stepfunctions.responses import get_backend as sfn_backend

from local.aws import background
from local.aws.patches import lambda_invoke

LOG = logging.getLogger(__name__)

_OWN_TARGETS = ("lambda", "states", "sqs", "sns")

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html (detail.reason values)
_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


def s3_event_detail(account_id: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any]:
    """The `detail` of an S3 event on EventBridge, as documented in ev-events.html."""
    obj: dict[str, Any] = {"key": key.name}
    deleted = event_name.startswith("s3:ObjectRemoved")
    if not deleted:
        obj |= {"size": key.size, "etag": key.etag.replace('"', "")}
    if getattr(bucket, "is_versioned", False) and key.version_id:
        obj["version-id"] = key.version_id
    obj["sequencer"] = f"{time.time_ns():018X}"
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account_id,
        "source-ip-address": "127.0.0.1",
        "reason": _REASONS.get(event_name, event_name.split(":")[1]),
    }
    if deleted:
        marker = event_name.endswith("DeleteMarkerCreated")
        detail["deletion-type"] = "Delete Marker Created" if marker else "Permanently Deleted"
    return detail


def _send_s3_event_to_default_bus(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    try:
        entry = {
            "Source": "aws.s3",
            "DetailType": s3_notifications._detail_type(event_name),
            "Detail": json.dumps(s3_event_detail(account_id, bucket, event_name, key)),
            "Resources": [bucket.arn],
            "EventBusName": "default",
        }
        events_backends[account_id][bucket.region_name].put_events([entry])
    except Exception:  # asynchronous in AWS: a delivery problem never fails the S3 request
        LOG.exception("could not deliver the S3 %s event for %s/%s", event_name, bucket.name, key.name)


def target_input(target: dict[str, Any], event: dict[str, Any], transform_input: bool) -> Any:
    """What a target receives: the event, or Input / InputPath / InputTransformer applied to it.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    """
    delivered = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        stamp = datetime.datetime.fromtimestamp(float(delivered["time"]), tz=datetime.UTC)
        delivered["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not transform_input:
        return delivered
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        matches = jsonpath(target["InputPath"]).find(delivered)
        return matches[0].value if matches else None
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        with_ingestion = {"ingestion-time": time.time(), **delivered}
        return EventTemplateParser.parse(
            transformer.get("InputTemplate"),
            transformer.get("InputPathsMap", {}),
            with_ingestion,  # type: ignore[arg-type]
        )
    return delivered


def _deliver(rule: Rule, target: dict[str, Any], payload: Any) -> None:
    _, _, service, region, account_id, resource = target["Arn"].split(":", 5)
    body = json.dumps(payload)
    if service == "sqs":
        group_id = target.get("SqsParameters", {}).get("MessageGroupId")
        sqs_backends[account_id][region].send_message(
            queue_name=resource, message_body=body, group_id=group_id
        )
    elif service == "lambda":
        function = lambda_backends[account_id][region].get_function(target["Arn"])
        # Asynchronous, as EventBridge invokes Lambda: a throttled event is retried, not dropped.
        lambda_invoke.invoke_async(function, payload, f"rule {rule.name} -> {target['Arn']}")
    elif service == "states":
        backend = sfn_backend(account_id, region)
        background.submit(
            lambda: backend.start_execution(target["Arn"], name=str(uuid.uuid4()), execution_input=body),
            f"rule {rule.name} -> {target['Arn']}",
        )
    elif service == "sns":
        background.submit(
            lambda: sns_backends[account_id][region].publish(message=body, arn=target["Arn"]),
            f"rule {rule.name} -> {target['Arn']}",
        )


def _send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    if self.state == "DISABLED" or not self.event_pattern.matches_event(original_event):
        return
    others = []
    for target in self.targets:
        if target["Arn"].split(":")[2] not in _OWN_TARGETS:
            others.append(target)
            continue
        try:
            _deliver(self, target, target_input(target, dict(original_event), transform_input))
        except Exception:  # one bad target must not stop the others, as in EventBridge
            LOG.exception("rule %s could not deliver to %s", self.name, target["Arn"])
    if others:
        # Logs, archives, other buses, API destinations: moto's own delivery.
        native = copy.copy(self)
        native.targets = others
        try:
            _original_send_to_targets(native, original_event, transform_input)
        except NotImplementedError:
            LOG.warning("rule %s: target type not emulated: %s", self.name, [t["Arn"] for t in others])


_original_send_to_targets = Rule.send_to_targets


def install() -> None:
    s3_notifications._send_event_bridge_message = _send_s3_event_to_default_bus
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
