"""Bounded retries with jittered exponential backoff: the one retry helper of the Lambda package.

tenacity runs the loop (attempts, stop, sleep, re-raising). What is ours is the wait: a capped exponential
`initial * 2**retry`, scaled by a jitter factor drawn between `low` and `high` from an injected random
source. tenacity's own jittered waits (wait_random_exponential, wait_exponential_jitter) draw from the
global `random`, so a test could not pin the delays, and they offer only full jitter or added jitter,
not the bounded spreads the callers below need. A deadline stop is ours too: stop_after_delay measures
time.monotonic, which an injected clock cannot drive. See "Exponential Backoff And Jitter" on the AWS
Architecture Blog (aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, TryAgain, retry_if_exception, retry_never, stop_after_attempt
from tenacity.stop import stop_base

__all__ = ["Backoff", "Hooks", "Retrying", "TryAgain", "after_attempts", "before_deadline", "retrying"]

Sleep = Callable[[float], None]
Random = Callable[[], float]


@dataclass(frozen=True)
class Backoff:
    """Retry n (0-based) waits min(cap, initial * 2**n), times a factor drawn uniformly in [low, high)."""

    initial: float
    cap: float
    low: float = 0.0  # the defaults are full jitter
    high: float = 1.0

    def ceiling(self, retry: int) -> float:
        return min(self.cap, self.initial * 2**retry)

    def delay(self, retry: int, rng: Random = random.random) -> float:
        return self.ceiling(retry) * (self.low + (self.high - self.low) * rng())


def after_attempts(attempts: int) -> stop_base:
    return stop_after_attempt(attempts)


class before_deadline(stop_base):
    """Stop once `clock()` reaches `deadline`: a wall-clock budget the caller's clock can drive."""

    def __init__(self, deadline: float, clock: Callable[[], float] = time.time) -> None:
        self._deadline, self._clock = deadline, clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock() >= self._deadline


def retrying(
    backoff: Backoff,
    stop: stop_base,
    *,
    retry_on: Callable[[BaseException], bool] | None = None,
    hooks: Hooks | None = None,
) -> Retrying:
    """A tenacity Retrying: iterate it (`for attempt in ...: with attempt: ...`). An exception retry_on
    accepts is retried; raising TryAgain retries too; anything else propagates at once. When `stop` ends
    the retries, the last attempt's exception is raised again, except TryAgain: then the loop just ends,
    and the code after it is the give-up path."""
    hooks = hooks or Hooks()
    return Retrying(
        sleep=hooks.sleep,
        stop=stop,
        wait=lambda state: backoff.delay(state.attempt_number - 1, hooks.rng),
        retry=retry_if_exception(retry_on) if retry_on is not None else retry_never,
        before_sleep=hooks.before_sleep,
        retry_error_callback=_spent,
    )


def _spent(state: RetryCallState) -> None:
    # Called instead of raising RetryError; in a `for attempt in` loop, returning ends the loop.
    assert state.outcome is not None
    if not isinstance(state.outcome.exception(), TryAgain):
        state.outcome.result()  # raises it, with its traceback


@dataclass(frozen=True)
class Hooks:
    """What tests inject: the sleep, the jitter's random source, and a call before each sleep."""

    sleep: Sleep = time.sleep
    rng: Random = random.random
    before_sleep: Callable[[RetryCallState], None] | None = None
