"""Step Functions time scaling: Wait states and Retry intervals run `time_scale` times as long.

The state machine definition is never rewritten; the engine's two sleeping points are patched instead:
- `WaitFunction._wait_interval`, shared by Seconds, SecondsPath, Timestamp and TimestampPath. moto's
  version also rounds elapsed time down to whole seconds and re-waits the difference, which never
  converges for sub-second waits, so the replacement waits on a monotonic deadline;
- the `time.sleep` of `RetrierDecl._eval_body` (interval x backoff, capped by MaxDelaySeconds), except a
  retrier of `Lambda.TooManyRequestsException`: what it waits for, a function's sandboxes (reserved
  concurrency) coming free, runs at real speed, so its backoff does too. Scaled, its 10 attempts (about 30
  minutes on AWS) lasted about 18 s here, and a burst of uploads failed on throttling AWS would absorb.
- `TimeoutSecondsPath`: osbatch uses it only on WaitForJob, a `waitForTaskToken` task whose timeout is the
  poll interval, i.e. the wait a Wait state had (infra/workflow.py).
- Fixed `TimeoutSeconds` and heartbeats are not scaled: handlers run at real speed. That includes
  WaitForSlot's 10-minute fallback: locally a job waiting for a slot starts only when a release wakes it (a
  lost wake-up shows as a 10-minute stall), and the waiting jobs do not all retry StartJob together every
  few seconds, which would outrun start-job's reserved concurrency of 5 on this clock (Lambda's throttling
  retries are scaled, the invocations are not).
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSecondsPath
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

_POLL_S = 0.05
# Lambda's throttling error: its retrier waits for sandboxes, which run at real speed.
REAL_TIME_RETRY_ERRORS = frozenset({"Lambda.TooManyRequestsException"})


class TimeScale:
    factor = 1.0


def scaled(seconds: float) -> float:
    return max(0.0, float(seconds)) * TimeScale.factor


def _wait_interval(self: WaitFunction, env: Any, wait_seconds: float) -> None:
    deadline = time.monotonic() + scaled(wait_seconds)
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        # The event is set when the execution stops; a short nap guards against a set-but-running state.
        if env.program_state_event.wait(remaining):
            time.sleep(min(remaining, _POLL_S))


_timeout_seconds_path = TimeoutSecondsPath._eval_seconds


def _scaled_timeout_seconds_path(self: TimeoutSecondsPath, env: Any) -> float:
    # moto waits on threading events with this value, so a fraction of a second is fine.
    return scaled(_timeout_seconds_path(self, env))


_retrying = threading.local()  # whether the retrier sleeping on this thread waits at real speed
_retrier_eval_body = retrier_decl.RetrierDecl._eval_body


def _retrier_body(self: retrier_decl.RetrierDecl, env: Any) -> None:
    names = {getattr(name, "error_name", None) for name in self.error_equals.error_names}
    _retrying.real_time = bool(names & REAL_TIME_RETRY_ERRORS)
    try:
        _retrier_eval_body(self, env)
    finally:
        _retrying.real_time = False


def _retry_sleep(seconds: float) -> None:
    time.sleep(seconds if getattr(_retrying, "real_time", False) else scaled(seconds))


def install(time_scale: float) -> None:
    TimeScale.factor = time_scale
    TimeoutSecondsPath._eval_seconds = _scaled_timeout_seconds_path  # type: ignore[method-assign,assignment]
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    # `retrier_decl` only uses `time.sleep`; give it a module whose sleep is scaled.
    retrier_decl.time = SimpleNamespace(sleep=_retry_sleep)  # type: ignore[assignment]
    retrier_decl.RetrierDecl._eval_body = _retrier_body  # type: ignore[method-assign]
