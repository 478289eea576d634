"""AWS::Events::EventBus and AWS::Events::Rule with its Targets."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code


def event_bus(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props["Name"]
    events = ctx.client("events")
    try:
        arn = events.create_event_bus(Name=name)["EventBusArn"]
        action = "created"
    except ClientError as error:
        if error_code(error) != "ResourceAlreadyExistsException":
            raise
        arn, action = events.describe_event_bus(Name=name)["Arn"], "exists"
    return Created(name, {"Arn": arn, "Name": name}, action)


def rule(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    events = ctx.client("events")
    name = props.get("Name") or ctx.physical_name(logical_id)
    bus = _bus_name(props.get("EventBusName", "default"))
    settings: dict[str, Any] = {
        key: props[key] for key in ("ScheduleExpression", "State", "Description", "RoleArn") if key in props
    }
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        settings["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    arn = events.put_rule(Name=name, EventBusName=bus, **settings)["RuleArn"]  # an upsert
    targets = props.get("Targets", [])
    wanted = {target["Id"] for target in targets}
    stale = [
        t["Id"]
        for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        if t["Id"] not in wanted
    ]
    if stale:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=stale)
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    if "ScheduleExpression" in props:
        ctx.note(f"rule {name}: schedules are stored but never fire in the emulator")
    # Ref is the rule name on the default bus and "bus|name" on a custom one.
    physical_id = name if bus == "default" else f"{bus}|{name}"
    return Created(physical_id, {"Arn": arn}, "applied")


def _bus_name(bus: str) -> str:
    return bus.split("/")[-1] if bus.startswith("arn:") else bus


HANDLERS = {
    "AWS::Events::EventBus": event_bus,
    "AWS::Events::Rule": rule,
}
