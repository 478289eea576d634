"""bench/simulate_scale.py: the scale simulation conserves records and its cluster rejects what its queues
cannot hold."""

from __future__ import annotations

from dataclasses import replace

from bench import simulate_scale as sim
from osbatch.dal.domain_writers import LimitSettings

FUNCTIONS = (*sim.SHORT_STEP_SECONDS, "prepare", "ingest-chunk")
DEPLOYED_WRITERS = LimitSettings()


def small_design(writers: LimitSettings = DEPLOYED_WRITERS) -> sim.Design:
    """The deployed design's shape with explicit figures (deployed_design() imports aws-cdk)."""
    return sim.Design(
        memory_mb=dict.fromkeys(FUNCTIONS, 1024),
        reservation=lambda slots: max(40, min(slots * 8, writers.ceiling)),
        map_concurrency=8,
        lambda_throttled=sim.Retrier(10, 300, 10),
        start_throttled=sim.Retrier(30, 600, 0, jitter=False),
        no_writer_slot=sim.Retrier(30, 300, 20),
        ingest_timeout=900,
        writers=writers,
    )


def pinned_writers(count: int) -> LimitSettings:
    return LimitSettings(initial=count, floor=count, ceiling=count)


def test_every_record_is_indexed_once_and_every_execution_fits_its_history() -> None:
    # Given three uploads of 250,000 records (three remote jobs each) on a domain of two nodes
    scenario = sim.Scenario(files=3, records_per_file=250_000, nodes=2, jobs_in_flight=2)

    # When the simulation runs them to the end
    totals = sim.simulate(small_design(), scenario)

    # Then every record is indexed, none twice, no upload failed, and the histories stay small
    assert totals.indexed == 750_000
    assert totals.dead_lettered == 0
    assert totals.duplicate_chunks == 0
    assert not totals.failed_uploads
    assert len(totals.histories) == 3
    assert max(totals.histories) <= sim.HISTORY_LIMIT
    assert totals.last_indexed >= totals.last_inference_end > 0


def test_the_429_rate_rises_once_writers_outnumber_what_the_queues_hold() -> None:
    # Given one node with one write thread and a queue of one task: room for one writer's two requests
    scenario = sim.Scenario(
        files=2, records_per_file=60_000, nodes=1, cores_per_node=1, queue_size=1, jobs_in_flight=2
    )

    # When one writer, then eight, bulk into it
    one = sim.Simulation(small_design(pinned_writers(1)), scenario).run()
    eight = sim.Simulation(small_design(pinned_writers(8)), scenario).run()

    # Then one writer is never rejected, eight are, and either way every record is indexed or dead-lettered
    assert one.rejected == 0
    assert eight.rejected > 0
    assert eight.rejected / eight.attempts > one.rejected / one.attempts
    for totals in (one, eight):
        assert totals.indexed + totals.dead_lettered == 120_000
        assert totals.duplicate_chunks == 0


def test_the_adaptive_writer_limit_backs_off_when_the_node_rejects() -> None:
    # Given the deployed limit settings (start 8, ceiling 64) and a node that holds two requests at once
    scenario = sim.Scenario(
        files=2, records_per_file=200_000, nodes=1, cores_per_node=1, queue_size=1, jobs_in_flight=2
    )
    roomy = replace(scenario, cores_per_node=8, queue_size=10_000)

    # When the same uploads run against it and against a node with room to spare
    tight = sim.simulate(small_design(), scenario)
    easy = sim.simulate(small_design(), roomy)

    # Then only the tight node rejects, and there the limit never climbs as it does on the roomy one
    assert tight.rejected > 0
    assert easy.rejected == 0
    assert tight.peak_limit < easy.peak_limit


def test_a_limit_reacting_within_running_chunks_is_refused_less_than_one_waiting_for_their_end() -> None:
    # Given four uploads at once into one node that holds one write task and queues four
    scenario = sim.Scenario(
        files=4, records_per_file=200_000, nodes=1, cores_per_node=1, queue_size=4, jobs_in_flight=4
    )

    # When the limit halves at the first 429 and pauses the newest running writers (as deployed), and when
    # it halves only as throttled chunks end
    in_chunk = sim.simulate(small_design(), scenario)
    per_chunk = sim.simulate(small_design(), replace(scenario, limit_in_chunk=False))

    # Then both index every record, and the node refuses fewer requests when the running chunks react
    assert in_chunk.indexed == per_chunk.indexed == 800_000
    assert in_chunk.rejected < per_chunk.rejected


def test_before_the_fixes_an_upload_waiting_past_the_retry_window_for_a_slot_failed() -> None:
    # Given the design before the fixes: one slot, held to Finalize, its wait counted against a two-hour
    # retry window, and three uploads whose transform job runs about 1.4 hours
    scenario = sim.Scenario(
        files=3,
        records_per_file=1_000_000,
        nodes=2,
        jobs_in_flight=1,
        retry_window_hours=2.0,
        before_fixes=True,
    )

    # When they are uploaded at once
    totals = sim.simulate(small_design(), scenario)

    # Then the third waits past the window and fails, and its records are dead letters, not lost
    assert totals.failed_uploads == {"ThrottledPastWindow waiting for a slot": 1}
    assert totals.indexed == 2_000_000
    assert totals.dead_lettered == 1_000_000


def test_queued_uploads_wait_on_their_own_window_and_all_complete() -> None:
    # Given the same three uploads on one slot, as deployed: the wait has the two days of slot_wait_window
    scenario = sim.Scenario(files=3, records_per_file=1_000_000, nodes=2, jobs_in_flight=1)

    # When they are uploaded at once
    totals = sim.simulate(small_design(), scenario)

    # Then none fails, every record is indexed, and the three transform jobs ran one after another
    assert not totals.failed_uploads
    assert totals.indexed == 3_000_000 and totals.dead_lettered == 0
    assert totals.last_inference_end > 3 * 1_000_000 / sim.RECORDS_PER_INSTANCE_SECOND * 0.95


def test_a_released_slot_starts_the_waiting_upload_at_once_not_at_its_next_retry() -> None:
    # Given two uploads on one slot, with the wake-up (as deployed) and without (StartJob's retrier only)
    scenario = sim.Scenario(files=2, records_per_file=1_000_000, nodes=2, jobs_in_flight=1)

    # When they are uploaded at once
    woken = sim.simulate(small_design(), scenario)
    retried = sim.simulate(small_design(), replace(scenario, slot_wake=False))

    # Then with the wake-up the second takes the slot the moment the first gives it back; without it, the
    # slot stands free until the second's next StartJob retry (30 s doubling to 10 minutes)
    assert woken.slot_handovers == retried.slot_handovers == 1
    assert woken.slot_idle_seconds == 0.0
    assert retried.slot_idle_seconds > 0.0
    assert woken.last_inference_end < retried.last_inference_end
    # And both index every record
    assert woken.indexed == retried.indexed == 2_000_000


def test_a_queued_upload_past_the_slot_wait_window_fails_with_its_records_dead_lettered() -> None:
    # Given a slot wait window of one hour, shorter than one transform job
    design = replace(small_design(), slot_wait_hours=1.0)
    scenario = sim.Scenario(files=2, records_per_file=1_000_000, nodes=2, jobs_in_flight=1)

    # When two uploads share one slot
    totals = sim.simulate(design, scenario)

    # Then the second gives up waiting, and its records are dead letters
    assert totals.failed_uploads == {"SlotWaitPastWindow": 1}
    assert totals.indexed == 1_000_000 and totals.dead_lettered == 1_000_000


def test_chunks_refused_a_writer_slot_come_back_and_finish() -> None:
    # Given more Map children than writer slots: 4 uploads on 4 slots, 32 reserved functions, 2 writers,
    # and a short function timeout so a third of it (the lease wait) passes quickly
    design = replace(small_design(pinned_writers(2)), ingest_timeout=30)
    scenario = sim.Scenario(
        files=4, records_per_file=300_000, nodes=1, jobs_in_flight=4, ingest_concurrency=32
    )

    # When they ingest at once
    totals = sim.simulate(design, scenario)
    before = sim.simulate(design, replace(scenario, before_fixes=True))

    # Then NoWriterSlot is retried and every upload completes; before the fix it failed uploads
    assert not totals.failed_uploads
    assert totals.indexed == 1_200_000 and totals.duplicate_chunks == 0
    assert before.failed_uploads.get(sim.NO_WRITER_SLOT, 0) > 0
