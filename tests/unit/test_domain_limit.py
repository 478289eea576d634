"""All jobs writing to one domain share its writer slots; the limit halves on 429s and grows without them,
and a lower limit pauses the newest writers already running."""

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
    job_b.release("job-b/chunk-0", clean=False)
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


def test_a_429_halves_the_limit_at_once_but_not_again_for_requests_sent_before(table: Any) -> None:
    # Given a limit of 8, and two requests sent at the same moment
    clock = Clock()
    domain = writers(table, clock, initial=8)
    sent = clock.now
    clock.sleep(2)

    # When both are answered 429, a few seconds apart
    domain.throttled(sent_at=sent)
    clock.sleep(5)
    domain.throttled(sent_at=sent)

    # Then the limit halved once: the second 429 answers the overload the first halving reacted to
    assert domain.limit() == 4
    # And a 429 to a request sent after the halving is news: it halves again
    domain.throttled(sent_at=clock.now)
    assert domain.limit() == 2


def test_clean_chunks_raise_the_limit_by_one_between_floor_and_ceiling(table: Any) -> None:
    # Given a limit of 8 between 1 and 10
    clock = Clock()
    domain = writers(table, clock, initial=8, floor=1, ceiling=10)
    # When chunks that saw no 429 end, one after another
    for _ in range(12):
        domain.acquire("w", wait_seconds=0)
        domain.release("w", clean=True)
    # Then the limit rose one at a time, up to the ceiling
    assert domain.limit() == 10
    # And a chunk that saw 429s leaves it as it is (it halved it when they came)
    domain.acquire("w", wait_seconds=0)
    domain.release("w", clean=False)
    assert domain.limit() == 10
    # And halving never takes it below the floor
    for _ in range(6):
        clock.sleep(1)
        domain.throttled()
    assert domain.limit() == 1


def test_a_lower_limit_pauses_the_newest_running_writers_until_older_ones_finish(table: Any) -> None:
    # Given four chunks of two jobs writing to a domain with a limit of 4, taken one second apart
    clock = Clock()
    job_a, job_b = writers(table, clock, initial=4), writers(table, clock, initial=4)
    for domain, writer in [(job_a, "a/0"), (job_b, "b/0"), (job_a, "a/1"), (job_b, "b/1")]:
        domain.acquire(writer, wait_seconds=0)
        clock.sleep(1)
    assert all(job_a.may_write(w) for w in ["a/0", "b/0", "a/1", "b/1"])

    # When one of them is answered 429
    job_b.throttled()

    # Then the two oldest go on writing, and the two newest pause between requests
    assert [job_a.may_write(w) for w in ["a/0", "b/0", "a/1", "b/1"]] == [True, True, False, False]
    # And when the oldest finishes, the next oldest writes again
    job_a.release("a/0", clean=False)
    assert [job_a.may_write(w) for w in ["b/0", "a/1", "b/1"]] == [True, True, False]


def test_a_paused_writer_gives_up_at_its_deadline_and_goes_on_when_its_turn_comes(table: Any) -> None:
    # Given a limit of 1 and two running writers: the second one paused
    clock = Clock()
    domain = writers(table, clock, initial=2)
    domain.acquire("a/0", wait_seconds=0)
    clock.sleep(1)
    domain.acquire("a/1", wait_seconds=0)
    domain.throttled()
    turns = domain.turns("a/1", within_seconds=120)

    # When its turn does not come within its time
    # Then it gives up (the workflow retries the chunk from its checkpoint), after waiting that long
    start = clock.now
    with pytest.raises(NoWriterSlot, match="paused for older writers"):
        turns.wait_turn()
    assert clock.now - start >= 120
    # And once the older writer is done, its turn comes at once
    domain.release("a/0", clean=True)
    now = clock.now
    domain.turns("a/1", within_seconds=120).wait_turn()
    assert clock.now == now
