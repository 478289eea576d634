"""All jobs writing to one domain share its writer slots; the limit halves on 429s and grows without them."""

from __future__ import annotations

from typing import Any

import pytest

from osbatch.dal.domain_writers import DomainWriters, LimitSettings, NoWriterSlot
from osbatch.retry import Hooks
from tests.unit.helpers import create_job_table


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def table(aws: None) -> Any:
    return create_job_table()


def writers(table: Any, clock: Clock, **settings: int) -> DomainWriters:
    return DomainWriters(
        table,
        "https://search-docs.example",
        LimitSettings(**settings),
        clock=clock,
        hooks=Hooks(sleep=clock.sleep),
    )


def test_writers_beyond_the_limit_wait_and_give_up(table: Any) -> None:
    # Given a domain limit of 2, shared by two jobs' chunks (separate DomainWriters, like separate Lambdas)
    clock = Clock()
    job_a, job_b = writers(table, clock, initial=2), writers(table, clock, initial=2)

    # When two chunks take slots
    job_a.acquire("job-a/chunk-0", wait_seconds=0)
    job_b.acquire("job-b/chunk-0", wait_seconds=0)

    # Then a third, of either job, gets none within its wait
    with pytest.raises(NoWriterSlot):
        job_a.acquire("job-a/chunk-1", wait_seconds=30)
    # And once one is released, it gets one
    job_b.release("job-b/chunk-0", throttled=False)
    job_a.acquire("job-a/chunk-1", wait_seconds=0)
    assert job_a.holders() == ["job-a/chunk-0", "job-a/chunk-1"]


def test_a_killed_writers_lease_lapses_instead_of_leaking(table: Any) -> None:
    # Given a limit of 1 held by a chunk whose Lambda was killed (it never releases)
    clock = Clock()
    domain = writers(table, clock, initial=1, lease_seconds=900)
    domain.acquire("job-a/chunk-0", wait_seconds=0)

    # When another chunk is willing to wait past the lease's expiry
    domain.acquire("job-b/chunk-0", wait_seconds=2000)

    # Then it got the slot, and the dead lease is gone
    assert domain.holders() == ["job-b/chunk-0"]


def test_throttling_halves_the_limit_and_quiet_chunks_raise_it_by_one(table: Any) -> None:
    # Given a limit of 8
    clock = Clock()
    domain = writers(table, clock, initial=8, floor=1, ceiling=10)
    # When a chunk saw 429s, twice
    for _ in range(2):
        domain.acquire("w", wait_seconds=0)
        domain.release("w", throttled=True)
    # Then the limit halved each time
    assert domain.limit() == 2
    # And chunks that saw none raise it one at a time, up to the ceiling
    for _ in range(12):
        domain.acquire("w", wait_seconds=0)
        domain.release("w", throttled=False)
    assert domain.limit() == 10
    # And it never drops below the floor
    for _ in range(6):
        domain.acquire("w", wait_seconds=0)
        domain.release("w", throttled=True)
    assert domain.limit() == 1
