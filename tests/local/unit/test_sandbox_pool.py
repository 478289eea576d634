"""The sandbox pool's bookkeeping and the in-sandbox runtime's invocation, without starting processes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.aws.sandbox import FunctionSpec, SandboxPools, Throttled
from local.aws.sandbox.bootstrap import invoke


def spec(reserved: int | None = None, **changes: Any) -> FunctionSpec:
    settings: dict[str, Any] = {
        "name": "fn",
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
        "account_id": "123456789012",
        "region": "us-east-1",
        "handler": "app.handler",
        "runtime": "python3.12",
        "code_zip": b"zip",
        "reserved_concurrency": reserved,
        **changes,
    }
    return FunctionSpec(**settings)


def test_reserved_concurrency_throttles_past_it_until_a_sandbox_is_released() -> None:
    # Given a function with reserved concurrency 1 and one invocation holding its sandbox slot
    pools = SandboxPools("http://127.0.0.1:1")
    pool, _ = pools._acquire(spec(reserved=1))

    # When a second invocation asks for a sandbox, and again after the first is released
    with pytest.raises(Throttled) as throttled:
        pools._acquire(spec(reserved=1))
    pools._release(pool, None, healthy=False)
    again, _ = pools._acquire(spec(reserved=1))

    # Then the second is throttled with Lambda's reason, and the slot is free once released
    assert throttled.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert again is pool and pool.busy == 1


def test_the_account_quota_caps_every_function_together() -> None:
    # Given an account quota of 2 and two unreserved functions using it
    pools = SandboxPools("http://127.0.0.1:1", account_concurrency=2)
    pools._acquire(spec(name="a", arn="arn:a"))
    pools._acquire(spec(name="b", arn="arn:b"))

    # When a third invocation arrives / Then it is throttled by the account quota
    with pytest.raises(Throttled) as throttled:
        pools._acquire(spec(name="c", arn="arn:c"))
    assert throttled.value.reason == "ConcurrentInvocationLimitExceeded"


def test_a_changed_configuration_retires_the_old_sandboxes() -> None:
    # Given a pool for a function's configuration
    pools = SandboxPools("http://127.0.0.1:1")
    old, _ = pools._acquire(spec(environment={"A": "1"}))
    pools._release(old, None, healthy=False)

    # When the function's environment changes (an update_stack) and it is invoked
    new, _ = pools._acquire(spec(environment={"A": "2"}))

    # Then a new pool serves it and the old one is retired
    assert new is not old
    assert old.retired and not new.retired


class StandIn:
    """A sandbox's pool-facing side: whether its process runs, and whether the pool killed it."""

    def __init__(self, alive: bool) -> None:
        self.alive, self.killed = alive, False

    def kill(self) -> None:
        self.killed = True


def test_an_idle_sandbox_that_died_is_not_handed_an_invocation() -> None:
    # Given a pool whose idle sandboxes are a live one and, tried first, one killed while idle
    pools = SandboxPools("http://127.0.0.1:1")
    pool, _ = pools._acquire(spec())
    pools._release(pool, None, healthy=False)
    live, dead = StandIn(alive=True), StandIn(alive=False)
    pool.idle = [live, dead]  # type: ignore[list-item]

    # When an invocation takes an idle sandbox
    _, taken = pools._acquire(spec())

    # Then it gets the live one, and the dead one is cleaned up, not kept
    assert taken is live
    assert dead.killed and pool.idle == []


class Refused(Exception):
    pass


@pytest.fixture
def reserved_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the pool sets in a sandbox's environment; invoke() also sets the trace header there."""
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
        "_X_AMZN_TRACE_ID": "",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("reserved_variables")
def test_the_runtime_reports_a_handler_error_by_its_class_name() -> None:
    # Given a handler that raises / When the sandbox runtime invokes it
    def handler(event: Any, context: Any) -> Any:
        raise Refused(f"no {event['what']}")

    response = invoke(handler, _request({"what": "thanks"}))

    # Then the error payload has Lambda's shape, with the user's frames in the stack trace
    assert response["function_error"] == "Unhandled"
    assert response["payload"]["errorType"] == "Refused"
    assert response["payload"]["errorMessage"] == "no thanks"
    assert any("handler" in line for line in response["payload"]["stackTrace"])


@pytest.mark.usefixtures("reserved_variables")
def test_a_result_that_is_not_json_is_a_marshal_error() -> None:
    # Given a handler returning a set / When it is invoked / Then the runtime reports Runtime.MarshalError
    response = invoke(lambda event, context: {1, 2}, _request({}))
    assert response["payload"]["errorType"] == "Runtime.MarshalError"
    assert json.dumps(response["payload"])


@pytest.mark.usefixtures("reserved_variables")
def test_the_context_counts_down_to_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a request whose deadline is 5 s after "now"
    monkeypatch.setattr("local.aws.sandbox.bootstrap.time.time", lambda: 1000.0)

    # When a handler reads its context
    response = invoke(
        lambda event, context: [context.get_remaining_time_in_millis(), context.memory_limit_in_mb],
        _request({}, deadline_ms=1_005_000),
    )

    # Then it sees the time left and its memory size
    assert response == {"payload": [5000, 256], "function_error": None}


def _request(event: Any, deadline_ms: int = 0) -> dict[str, Any]:
    return {
        "request_id": "r-1",
        "event": event,
        "function_arn": "arn:fn",
        "deadline_ms": deadline_ms,
        "trace_id": "t",
    }
