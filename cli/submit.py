"""`osbatch submit`: refuse what the trigger would ignore, upload, wait for the job, and say why if none came.

The trigger is S3 `Object Created` -> the pipeline's EventBridge rule -> the submit queue -> the submit
function (infra/trigger.py). An upload can start nothing at every hop, silently: a key outside the rule's
prefix and suffix, the bucket not sending events to EventBridge, the rule missing or disabled, the queue
backing up, or events parked in its dead-letter queue. Each check below reads one of those hops with the
API the AWS docs name for it; the clients are injected, so the checks run against moto in tests.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from osbatch.config import PipelineConfig, SourceConfig
from osbatch.steps.submit import IGNORED_SUFFIXES, pipeline_for

# Messages waiting in the submit queue above which it counts as backing up: more than a few batches of
# its event source (infra/trigger.py: BATCH_SIZE 10, MAX_CONCURRENCY 5).
BACKLOG = 50


def ignored_because(key: str, config: PipelineConfig, pipelines: dict[str, PipelineConfig]) -> str | None:
    """Why the submit function would not start `config`'s job for an object at `key`, or None.

    The same rules it applies (osbatch.steps.submit: IGNORED_SUFFIXES, pipeline_for), which are the
    pipeline rule's prefix and suffix plus its longest-prefix routing."""
    source: SourceConfig = config.source
    if not key.startswith(source.prefix):
        return f"its key {key} is not under pipeline {config.name}'s prefix {source.prefix}"
    if not key.endswith(source.suffix):
        return (
            f"pipeline {config.name} starts jobs only for keys ending in {source.suffix!r} "
            f"(source.suffix), and {key} does not"
        )
    if key.endswith(IGNORED_SUFFIXES):
        return f"keys ending in {', '.join(IGNORED_SUFFIXES)} are inference outputs, never input"
    routed = pipeline_for(key, pipelines)
    if routed is not None and routed.name != config.name:
        return (
            f"{key} also matches pipeline {routed.name}'s longer prefix {routed.source.prefix}, "
            "so its job would run there"
        )
    return None


def wait_for_job(
    lookup: Callable[[], dict[str, Any] | None],
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval: float = 1.0,
) -> dict[str, Any] | None:
    """The job once `lookup` finds it, or None after `timeout` seconds (looked up at least once)."""
    deadline = clock() + timeout
    while True:
        job = lookup()
        if job is not None or clock() >= deadline:
            return job
        sleep(min(interval, max(deadline - clock(), 0.0)))


def _wildcard(pattern: str) -> re.Pattern[str]:
    """An EventBridge `wildcard` filter: `*` matches anything, `\\*` and `\\\\` are literal.

    EventBridge User Guide, "Wildcard matching",
    docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html"""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.DOTALL)


def _key_matches(filters: list[Any], key: str) -> bool:
    for entry in filters:
        if isinstance(entry, str) and entry == key:
            return True
        if isinstance(entry, dict):
            if "wildcard" in entry and _wildcard(entry["wildcard"]).fullmatch(key):
                return True
            if "prefix" in entry and key.startswith(entry["prefix"]):
                return True
            if "suffix" in entry and key.endswith(entry["suffix"]):
                return True
    return False


def rule_matches(pattern: dict[str, Any], bucket: str, key: str) -> bool:
    """Whether an EventBridge rule's pattern takes S3's `Object Created` event for this object."""
    if "aws.s3" not in pattern.get("source", []) or "Object Created" not in pattern.get("detail-type", []):
        return False
    detail = pattern.get("detail", {})
    buckets = detail.get("bucket", {}).get("name")
    keys = detail.get("object", {}).get("key")
    return (buckets is None or bucket in buckets) and (keys is None or _key_matches(keys, key))


@dataclass
class TriggerCheck:
    """The trigger's hops, read through boto3 clients (injected: the target's, or moto's in tests)."""

    events: Any
    s3: Any
    sqs: Any
    submit_queue_url: str | None = None
    submit_dlq_url: str | None = None

    def causes(self, bucket: str, key: str) -> list[str]:
        """Each likely reason an upload of `key` to `bucket` started no job; empty if every hop looks fine."""
        found = [self._bucket_notifications(bucket), self._rule(bucket, key)]
        found += self._queues()
        return [cause for cause in found if cause]

    def _bucket_notifications(self, bucket: str) -> str | None:
        # S3 sends events to EventBridge only when the bucket's notification configuration has an
        # EventBridgeConfiguration (S3 User Guide, "Enabling Amazon EventBridge").
        config = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" not in config:
            return (
                f"bucket {bucket} does not send events to EventBridge (its notification configuration has "
                "no EventBridgeConfiguration); redeploy the stack"
            )
        return None

    def _rule(self, bucket: str, key: str) -> str | None:
        matching = [
            rule
            for page in self.events.get_paginator("list_rules").paginate()
            for rule in page.get("Rules", [])
            if rule.get("EventPattern") and rule_matches(json.loads(rule["EventPattern"]), bucket, key)
        ]
        if not matching:
            return (
                f"no EventBridge rule takes `Object Created` for s3://{bucket}/{key}: the pipeline's rule is "
                "missing; redeploy the stack"
            )
        if not any(rule.get("State") == "ENABLED" for rule in matching):
            names = ", ".join(rule["Name"] for rule in matching)
            return f"the EventBridge rule for s3://{bucket}/{key} is disabled ({names}); enable it"
        return None

    def _queues(self) -> list[str]:
        found = []
        if self.submit_queue_url:
            waiting = self._messages(self.submit_queue_url)
            if waiting > BACKLOG:
                found.append(
                    f"the submit queue is backing up ({waiting} messages waiting): the submit function "
                    "is slow, throttled or failing; see its logs"
                )
        if self.submit_dlq_url:
            parked = self._messages(self.submit_dlq_url)
            if parked:
                found.append(
                    f"the submit dead-letter queue holds {parked} message(s): events that could not be "
                    f"delivered or submitted ({self.submit_dlq_url})"
                )
        return found

    def _messages(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))
