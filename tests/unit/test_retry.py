"""The one retry helper: bounded attempts, a capped exponential wait with bounded jitter, a clean give-up."""

from __future__ import annotations

import pytest

from osbatch.retry import Backoff, Hooks, TryAgain, after_attempts, before_deadline, retrying


def test_the_wait_doubles_to_its_cap_and_the_jitter_stays_within_its_spread() -> None:
    # Given waits from 0.5 s doubling to 4 s, spread over [0.5, 1.5) of that
    backoff = Backoff(initial=0.5, cap=4.0, low=0.5, high=1.5)
    # Then the lowest and highest draws bound each retry's wait
    assert [backoff.delay(n, rng=lambda: 0.0) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [backoff.delay(n, rng=lambda: 1.0) for n in range(5)] == [0.75, 1.5, 3.0, 6.0, 6.0]


def test_an_attempt_asking_again_is_retried_until_the_attempts_are_spent_then_the_loop_ends() -> None:
    # Given three attempts that all ask to be retried
    sleeps: list[float] = []
    attempts = 0
    for attempt in retrying(Backoff(1.0, 8.0), after_attempts(3), hooks=Hooks(sleeps.append, lambda: 1.0)):
        with attempt:
            attempts += 1
            raise TryAgain
    # Then each ran, with a full-jitter wait between them, and the code after the loop is reached
    assert (attempts, sleeps) == (3, [1.0, 2.0])


def test_a_retried_exception_is_raised_again_once_the_attempts_are_spent() -> None:
    # Given an exception the caller retries, raised by every attempt
    sleeps: list[float] = []
    tries = retrying(
        Backoff(1.0, 8.0),
        after_attempts(2),
        retry_on=lambda e: isinstance(e, KeyError),
        hooks=Hooks(sleeps.append),
    )
    # Then the last one surfaces, after one wait
    with pytest.raises(KeyError, match="2"):
        for attempt in tries:
            with attempt:
                raise KeyError(attempt.retry_state.attempt_number)
    assert len(sleeps) == 1


def test_an_exception_not_retried_surfaces_at_once() -> None:
    # Given an attempt that fails with an error the caller does not retry
    sleeps: list[float] = []
    tries = retrying(
        Backoff(1.0, 8.0),
        after_attempts(5),
        retry_on=lambda e: isinstance(e, KeyError),
        hooks=Hooks(sleeps.append),
    )
    # Then it is raised from the first attempt, without waiting
    with pytest.raises(ValueError, match="bad"):
        for attempt in tries:
            with attempt:
                raise ValueError("bad")
    assert sleeps == []


def test_a_deadline_stops_retrying_on_the_callers_clock() -> None:
    # Given a clock the waits advance, and a 10-second budget
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    attempts = 0
    tries = retrying(
        Backoff(2.0, 2.0, low=1.0, high=1.0), before_deadline(110.0, lambda: now[0]), hooks=Hooks(sleep)
    )
    for attempt in tries:
        with attempt:
            attempts += 1
            raise TryAgain
    # Then attempts run every 2 s until the clock reaches the deadline: at 100, 102, ..., 110
    assert (attempts, now[0]) == (6, 110.0)
