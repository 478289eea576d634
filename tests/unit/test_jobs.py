from __future__ import annotations

from osbatch.dal import WAITER_GONE_SECONDS, ChunkCounts, JobTable
from osbatch.models import JobStateName, SourceObject

SOURCE = SourceObject(bucket="in", key="input/msmarco/a.jsonl", etag="e1", size=10)


def test_creating_a_job_twice_is_not_an_error(jobs: JobTable) -> None:
    # Given a job that was recorded
    assert jobs.create("msmarco-1", "msmarco", SOURCE)
    # When the same job is recorded again (a duplicate event)
    again = jobs.create("msmarco-1", "msmarco", SOURCE)
    # Then it reports that nothing was created and the job is unchanged
    assert again is False
    assert jobs.get("msmarco-1")["state"] == "CREATED"  # type: ignore[index]


def test_retried_chunks_overwrite_their_counts(jobs: JobTable) -> None:
    # Given a job with two ingested chunks
    jobs.create("msmarco-1", "msmarco", SOURCE)
    jobs.put_chunk("msmarco-1", 0, ChunkCounts(10, 9, 1))
    jobs.put_chunk("msmarco-1", 1, ChunkCounts(5, 5, 0))
    # When chunk 0 is retried and reports again
    jobs.put_chunk("msmarco-1", 0, ChunkCounts(10, 10, 0))
    # Then the totals count it once
    tally = jobs.chunk_totals("msmarco-1")
    assert (tally.counts, tally.reported) == (ChunkCounts(15, 15, 0), {0, 1})


def test_chunks_outside_the_plan_are_not_counted(jobs: JobTable) -> None:
    # Given chunk items 0-2 from an earlier plan, and a new plan of two chunks of which only chunk 0 reported
    jobs.create("msmarco-1", "msmarco", SOURCE)
    for chunk in range(3):
        jobs.put_chunk("msmarco-1", chunk, ChunkCounts(4, 4, 0))
    jobs.put_chunk("msmarco-1", 0, ChunkCounts(6, 5, 1))
    jobs._table.delete_item(Key={"job_id": "msmarco-1", "item": "chunk#00001"})
    # When the totals are read for the two planned chunks
    tally = jobs.chunk_totals("msmarco-1", planned=2)
    # Then chunk 2 is ignored and chunk 1 is missing
    assert tally.counts == ChunkCounts(6, 5, 1)
    assert tally.missing(2) == [1]


def test_jobs_are_listed_newest_first(jobs: JobTable) -> None:
    # Given three jobs at different times, two of them running
    clock = iter(
        ["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"]
        + ["2026-01-02T00:00:00Z"] * 10
    )
    table = JobTable(jobs._table, clock=lambda: next(clock))
    for name in ("a", "b", "c"):
        table.create(f"msmarco-{name}", "msmarco", SOURCE)
    table.update("msmarco-a", JobStateName.RUNNING)
    table.update("msmarco-c", JobStateName.RUNNING)
    # When they are listed, by pipeline and all together
    listed = [job["job_id"] for job in table.list_jobs("msmarco")]
    listed_all = [job["job_id"] for job in table.list_jobs()]
    # Then the newest comes first, whatever state each job is in
    assert listed == ["msmarco-c", "msmarco-b", "msmarco-a"]
    assert listed_all == listed


def test_update_sets_state_and_fields_and_skips_none(jobs: JobTable) -> None:
    # Given a job
    jobs.create("msmarco-1", "msmarco", SOURCE)
    # When it is updated with counts and an absent reason
    jobs.update("msmarco-1", JobStateName.COMPLETED, indexed=7, reason=None)
    # Then the state and the count are stored, as ints
    job = jobs.get("msmarco-1")
    assert job is not None
    assert (job["state"], job["indexed"], "reason" in job) == ("COMPLETED", 7, False)


def test_waiting_jobs_get_free_slots_in_the_order_they_first_asked(jobs: JobTable) -> None:
    # Given a pipeline's 2 slots held, and jobs c, d and e refused in that order
    assert jobs.acquire_slot("msmarco", "a", 2, 0.0) and jobs.acquire_slot("msmarco", "b", 2, 0.0)
    assert [jobs.acquire_slot("msmarco", job, 2, 10.0) for job in "cde"] == [False, False, False]
    # When one slot frees and the later waiters ask first
    jobs.release_slot("msmarco", "a")
    # Then neither e nor d may jump the queue, and c, the oldest, gets it
    assert not jobs.acquire_slot("msmarco", "e", 2, 20.0)
    assert not jobs.acquire_slot("msmarco", "d", 2, 20.0)
    assert jobs.acquire_slot("msmarco", "c", 2, 20.0)
    # And the next freed slot goes to d, then e
    jobs.release_slot("msmarco", "b")
    assert not jobs.acquire_slot("msmarco", "e", 2, 30.0)
    assert jobs.acquire_slot("msmarco", "d", 2, 30.0)
    assert jobs.slot_holders("msmarco") == {"c", "d"}


def test_a_waiter_that_went_away_does_not_block_the_queue(jobs: JobTable) -> None:
    # Given one slot held, job gone refused at t=0 and never asking again (its execution was aborted),
    # and job late refused at t=100, which keeps asking
    assert jobs.acquire_slot("msmarco", "holder", 1, 0.0)
    assert not jobs.acquire_slot("msmarco", "gone", 1, 0.0)
    assert not jobs.acquire_slot("msmarco", "late", 1, 100.0)
    jobs.release_slot("msmarco", "holder")
    # When late asks while gone's ticket is recent, it still waits its turn
    assert not jobs.acquire_slot("msmarco", "late", 1, 1000.0)
    # Then once gone has not asked for WAITER_GONE_SECONDS, late takes the slot
    assert jobs.acquire_slot("msmarco", "late", 1, 0.0 + WAITER_GONE_SECONDS + 1)


def test_a_failed_waiting_job_gives_its_place_up(jobs: JobTable) -> None:
    # Given one slot held and jobs first and second waiting in that order
    assert jobs.acquire_slot("msmarco", "holder", 1, 0.0)
    assert not jobs.acquire_slot("msmarco", "first", 1, 0.0)
    assert not jobs.acquire_slot("msmarco", "second", 1, 0.0)
    # When first fails while waiting (FailJob releases its slot, which it never had) and the slot frees
    jobs.release_slot("msmarco", "first")
    jobs.release_slot("msmarco", "holder")
    # Then second is next
    assert jobs.acquire_slot("msmarco", "second", 1, 1.0)
