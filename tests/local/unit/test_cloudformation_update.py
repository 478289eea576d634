"""The local CloudFormation keeps a resource that one update removes and a later update declares again.

Deploying pipelines A, then B, then A again removes A's trigger rule and re-adds it under its old logical
id; moto 5.2.5 listed the rule but EventBridge had none (local/aws/patches/cloudformation.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import ResourceMap

from local.aws.patches.cloudformation import install_update_fix

REGION = "us-east-1"
STACK = "rules"


def _rule(pipeline: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail": {"object": {"key": [{"prefix": f"{pipeline}/"}]}},
            },
            "State": "ENABLED",
        },
    }


def _template(*pipelines: str) -> str:
    return json.dumps({"Resources": {f"Trigger{name}ObjectCreated": _rule(name) for name in pipelines}})


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    original = ResourceMap.update
    install_update_fix()
    try:
        with mock_aws():
            yield (
                boto3.client("cloudformation", region_name=REGION),
                boto3.client("events", region_name=REGION),
            )
    finally:
        ResourceMap.update = original  # type: ignore[method-assign]


def _rules_by_logical_id(cloudformation: Any, events: Any) -> dict[str, str | None]:
    """Each rule the stack lists, with its key prefix in EventBridge (None: EventBridge has no such rule)."""
    listed = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    existing = {rule["Name"]: rule for rule in events.list_rules()["Rules"]}
    found: dict[str, str | None] = {}
    for item in listed:
        rule = existing.get(item["PhysicalResourceId"])
        pattern = json.loads(rule["EventPattern"]) if rule else None
        prefix = pattern["detail"]["object"]["key"][0]["prefix"] if pattern else None
        found[item["LogicalResourceId"]] = prefix
    return found


def test_a_rule_removed_then_declared_again_exists_in_eventbridge(aws: tuple[Any, Any]) -> None:
    cloudformation, events = aws
    # Given a stack deployed with pipeline A's rule, then updated to pipeline B's alone
    cloudformation.create_stack(StackName=STACK, TemplateBody=_template("A"))
    cloudformation.update_stack(StackName=STACK, TemplateBody=_template("B"))
    assert _rules_by_logical_id(cloudformation, events) == {"TriggerBObjectCreated": "B/"}

    # When pipeline A is deployed again
    cloudformation.update_stack(StackName=STACK, TemplateBody=_template("A"))

    # Then the rule the stack lists for A exists in EventBridge, and B's is gone from both
    assert _rules_by_logical_id(cloudformation, events) == {"TriggerAObjectCreated": "A/"}
    assert len(events.list_rules()["Rules"]) == 1


def test_without_the_fix_the_stack_lists_a_rule_eventbridge_lacks(aws: tuple[Any, Any]) -> None:
    # Given moto's own update path (what the fix replaces)
    cloudformation, events = aws
    ResourceMap.update = ResourceMap.update.__wrapped__  # type: ignore[attr-defined,method-assign]
    cloudformation.create_stack(StackName=STACK, TemplateBody=_template("A"))
    cloudformation.update_stack(StackName=STACK, TemplateBody=_template("B"))

    # When pipeline A is deployed again
    cloudformation.update_stack(StackName=STACK, TemplateBody=_template("A"))

    # Then the stack lists A's rule while EventBridge has none: the bug this patch exists for
    assert _rules_by_logical_id(cloudformation, events) == {"TriggerAObjectCreated": None}
