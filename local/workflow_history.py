"""What a job's execution history says about its polling, and the switch for the wake rules.

Used by the integration tests and bench/completion_delay.py to tell a job woken by its completion event
from one that waited for the poll timeout, by the history rather than by wall-clock time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from osbatch.backends.remote_events import STATE_CHANGE_EVENTS


@dataclass(frozen=True)
class PollHistory:
    polls: int  # PollJob entries
    woken: int  # WaitForJob ended by SendTaskSuccess
    timed_out: int  # WaitForJob ended by its timeout (the polling fallback)


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    """The execution is named after the job id (steps/submit.py)."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{job_id}"


def poll_history(sfn: Any, arn: str) -> PollHistory:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events += page["events"]
    by_id = {event["id"]: event for event in events}

    def entered(event: dict[str, Any]) -> str:
        """The state an event belongs to: walk back to its StateEntered event."""
        while "stateEnteredEventDetails" not in event and event.get("previousEventId") in by_id:
            event = by_id[event["previousEventId"]]
        return str(event.get("stateEnteredEventDetails", {}).get("name", ""))

    polls = sum(1 for e in events if e.get("stateEnteredEventDetails", {}).get("name") == "PollJob")
    woken = sum(1 for e in events if e["type"] == "TaskSucceeded" and entered(e) == "WaitForJob")
    timed_out = sum(1 for e in events if e["type"] == "TaskTimedOut" and entered(e) == "WaitForJob")
    return PollHistory(polls, woken, timed_out)


def wake_rule_names(events: Any) -> list[str]:
    """The deployed rules on the services' state-change events (infra/wake.py)."""
    sources = {event.source for event in STATE_CHANGE_EVENTS}
    names = []
    for page in events.get_paginator("list_rules").paginate():
        for rule in page["Rules"]:
            pattern = json.loads(rule.get("EventPattern") or "{}")
            if set(pattern.get("source", [])) & sources:
                names.append(str(rule["Name"]))
    return names


@contextmanager
def wake_rules_disabled(events: Any) -> Iterator[None]:
    """Polling only: the wake rules disabled for the block, enabled again after it."""
    names = wake_rule_names(events)
    if not names:
        raise RuntimeError("no wake rules are deployed (infra/wake.py)")
    for name in names:
        events.disable_rule(Name=name)
    try:
        yield
    finally:
        for name in names:
            events.enable_rule(Name=name)
