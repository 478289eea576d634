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
    job_b.release("job-b/chunk-0")
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


def test_a_window_of_clean_requests_raises_the_limit_by_one_up_to_the_ceiling(table: Any) -> None:
    # Given a limit of 2 (ceiling 3) held by a writer
    clock = Clock()
    domain = writers(table, clock, initial=2, floor=1, ceiling=3)
    domain.acquire("w", wait_seconds=0)

    # When one request is taken without a 429, then a second
    domain.succeeded(sent_at=clock.now)
    assert domain.limit() == 2
    domain.succeeded(sent_at=clock.now)

    # Then a window of `limit` clean requests raised the limit by one
    assert domain.limit() == 3
    # And requests sent before that change do not count towards the next window
    clock.sleep(1)
    for _ in range(3):
        domain.succeeded(sent_at=clock.now - 5)
    assert domain.limit() == 3
    # And it never passes the ceiling
    for _ in range(6):
        domain.succeeded(sent_at=clock.now + 1)
    assert domain.limit() == 3
    # And halving never takes it below the floor
    for _ in range(6):
        clock.sleep(1)
        domain.throttled()
    assert domain.limit() == 1


def test_a_429_after_clean_requests_starts_their_count_again(table: Any) -> None:
    # Given a limit of 4 and three clean requests, one short of a window
    clock = Clock()
    domain = writers(table, clock, initial=4)
    domain.acquire("w", wait_seconds=0)
    sent = clock.now
    clock.sleep(1)
    for _ in range(3):
        domain.succeeded(sent_at=sent)

    # When a request is answered 429, and the limit halves to 2
    domain.throttled(sent_at=clock.now)
    assert domain.limit() == 2

    # Then the clean requests sent before the halving do not count, and two sent after it raise it to 3
    domain.succeeded(sent_at=sent)
    assert domain.limit() == 2
    clock.sleep(1)
    domain.succeeded(sent_at=clock.now)
    domain.succeeded(sent_at=clock.now)
    assert domain.limit() == 3


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
    job_a.release("a/0")
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
    domain.release("a/0")
    now = clock.now
    domain.turns("a/1", within_seconds=120).wait_turn()
    assert clock.now == now
