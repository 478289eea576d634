"""An asynchronous invocation that finds its function throttled is retried, as Lambda retries a throttled
asynchronous event, not dropped."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from local.aws.patches import lambda_invoke
from local.aws.sandbox import Throttled
from tests.helpers import eventually


class Function:
    function_name = "fail-job"


def test_a_throttled_event_is_retried_until_a_sandbox_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a function whose reserved concurrency is taken for its first two attempts
    attempts: list[Any] = []
    delivered = threading.Event()

    def run(function: Any, event: Any) -> None:
        attempts.append(event)
        if len(attempts) <= 2:
            raise Throttled("reserved concurrency", function.function_name)
        delivered.set()

    monkeypatch.setattr(lambda_invoke, "run", run)
    monkeypatch.setattr(lambda_invoke, "ASYNC_FIRST_DELAY_S", 0.01)
    # When an event is delivered asynchronously
    lambda_invoke.invoke_async(Function(), {"n": 1}, "test")  # type: ignore[arg-type]
    # Then it is retried until it runs, once
    eventually(delivered.is_set, what="the event delivered")
    assert attempts == [{"n": 1}] * 3


def test_an_event_throttled_past_the_retry_window_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a function always throttled, and a retry window already spent
    attempts: list[Any] = []

    def run(function: Any, event: Any) -> None:
        attempts.append(event)
        raise Throttled("reserved concurrency", function.function_name)

    monkeypatch.setattr(lambda_invoke, "run", run)
    monkeypatch.setattr(lambda_invoke, "ASYNC_RETRY_S", -1.0)
    retries: list[Any] = []
    monkeypatch.setattr(lambda_invoke.threading, "Timer", lambda *args: retries.append(args))
    # When an event is delivered asynchronously
    lambda_invoke.invoke_async(Function(), {"n": 1}, "test").result()  # type: ignore[arg-type]
    # Then it is tried once and given up: no retry is scheduled
    assert attempts == [{"n": 1}] and retries == []
