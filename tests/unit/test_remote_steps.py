from __future__ import annotations

import pytest

from osbatch.backends.base import BackendStatus, BackendThrottled, BackendUnavailable
from osbatch.config import PipelineConfig
from osbatch.dal import JobStore, JobTable
from osbatch.models import JobState, JobStateName, Prepared, PreparedJob, SourceObject
from osbatch.steps.poll_job import poll_job, timeout_used_percent
from osbatch.steps.start_job import JobSlotsFull, SlotWaitPastWindow, ThrottledPastWindow, start_job
from tests.unit.fake_backend import ScriptedBackend

SOURCE = SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl")


def prepared_state(job_id: str = "msmarco-1", remote_jobs: int = 1) -> JobState:
    parts = [
        PreparedJob(
            index=n, input_uri=f"s3://osb-out/jobs/x/input/job-{n:05d}/", parts=1, records=3, bytes=90
        )
        for n in range(remote_jobs)
    ]
    prepared = Prepared(
        input_uri="s3://osb-out/jobs/x/input/",
        parts=remote_jobs,
        records_in=3 * remote_jobs,
        valid=3 * remote_jobs,
        dead_lettered=0,
        jobs=parts,
    )
    return JobState(job_id=job_id, pipeline="msmarco", source=SOURCE, prepared=prepared)


def started(
    config: PipelineConfig, jobs: JobTable, backend: ScriptedBackend, remote_jobs: int = 1
) -> JobState:
    jobs.create("msmarco-1", "msmarco", SOURCE)
    return start_job(
        prepared_state(remote_jobs=remote_jobs),
        config=config,
        backend=backend,
        now=lambda: 1000.0,
        store=JobStore(jobs, None, "osb-out", "osb-dlq"),
    )


def test_start_submits_and_sets_up_polling(config: PipelineConfig, jobs: JobTable) -> None:
    # Given a prepared job
    backend = ScriptedBackend()
    # When it starts
    state = started(config, jobs, backend)
    # Then the remote job is recorded and polling begins at the configured interval
    assert backend.submitted == ["osb-msmarco-1-000"]
    assert [remote.output_uri for remote in state.remotes] == [
        "s3://osb-out/jobs/msmarco-1/output/job-00000/"
    ]
    assert state.poll is not None and (state.poll.wait_seconds, state.poll.deadline) == (60, 1000 + 72 * 3600)
    assert jobs.get("msmarco-1")["state"] == "RUNNING"  # type: ignore[index]


def test_start_waits_for_a_free_slot(config: PipelineConfig, jobs: JobTable) -> None:
    # Given the pipeline's 2 job slots are held
    for name in ("a", "b"):
        jobs.create(f"msmarco-{name}", "msmarco", SOURCE)
        assert jobs.acquire_slot("msmarco", f"msmarco-{name}", 2, 0.0)
    jobs.create("msmarco-1", "msmarco", SOURCE)
    # When a third starts / Then it is throttled (and retried by the workflow), not submitted
    backend = ScriptedBackend()
    with pytest.raises(JobSlotsFull, match="already has 2 jobs in flight"):
        start_job(
            prepared_state(),
            config=config,
            backend=backend,
            now=lambda: 0.0,
            store=JobStore(jobs, None, "osb-out", "osb-dlq"),
        )
    assert backend.submitted == []


def _attempt(config: PipelineConfig, jobs: JobTable, at: float, backend: ScriptedBackend) -> JobState:
    return start_job(
        prepared_state(),
        config=config,
        backend=backend,
        now=lambda: at,
        store=JobStore(jobs, None, "o", "osb-dlq"),
    )


def _hold_both_slots(jobs: JobTable) -> None:
    for name in ("a", "b"):
        jobs.create(f"msmarco-{name}", "msmarco", SOURCE)
        assert jobs.acquire_slot("msmarco", f"msmarco-{name}", 2, 0.0)


def test_throttling_is_retried_within_the_pipelines_own_window_then_fails_the_start(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a pipeline whose retry_time_window is 2 hours, and a service that keeps throttling
    assert config.inference.retry_time_window_seconds == 7200
    jobs.create("msmarco-1", "msmarco", SOURCE)
    throttling = ScriptedBackend(submit_errors=[BackendThrottled("ThrottlingException")] * 3)

    # When StartJob is throttled first at t=1000 and retried just inside the window
    with pytest.raises(BackendThrottled):
        _attempt(config, jobs, 1000.0, throttling)
    with pytest.raises(BackendThrottled):
        _attempt(config, jobs, 1000.0 + 7199, throttling)
    # Then a retry once the window has passed since the FIRST throttled attempt is no longer retryable
    with pytest.raises(ThrottledPastWindow, match=r"past retry_time_window PT2H: ThrottlingException"):
        _attempt(config, jobs, 1000.0 + 7200, throttling)


def test_waiting_for_a_slot_does_not_use_up_the_throttling_window(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a pipeline with a 2-hour retry_time_window whose 2 job slots are held by other uploads
    _hold_both_slots(jobs)
    jobs.create("msmarco-1", "msmarco", SOURCE)
    # When a third upload queues for 30 hours (many waves of uploads ahead of it)
    for hours in (0, 2, 30):
        with pytest.raises(JobSlotsFull, match="already has 2 jobs in flight"):
            _attempt(config, jobs, 1000.0 + hours * 3600, ScriptedBackend())
    # Then once a slot is free and the service throttles, it still gets its whole 2 hours
    jobs.release_slot("msmarco", "msmarco-a")
    start = 1000.0 + 30 * 3600
    throttling = ScriptedBackend(submit_errors=[BackendThrottled("ThrottlingException")] * 3)
    with pytest.raises(BackendThrottled):
        _attempt(config, jobs, start, throttling)
    with pytest.raises(BackendThrottled):
        _attempt(config, jobs, start + 7199, throttling)
    with pytest.raises(ThrottledPastWindow, match="past retry_time_window PT2H"):
        _attempt(config, jobs, start + 7200, throttling)


def test_a_slot_wait_is_held_to_the_slot_wait_window(config: PipelineConfig, jobs: JobTable) -> None:
    # Given the default slot_wait_window of two days, and both slots held all along
    assert config.inference.slot_wait_window_seconds == 48 * 3600
    _hold_both_slots(jobs)
    jobs.create("msmarco-1", "msmarco", SOURCE)
    # When the upload has queued from t=1000 to just inside the two days, and then to their end
    with pytest.raises(JobSlotsFull):
        _attempt(config, jobs, 1000.0, ScriptedBackend())
    with pytest.raises(JobSlotsFull):
        _attempt(config, jobs, 1000.0 + 48 * 3600 - 1, ScriptedBackend())
    # Then it stops waiting and fails (FailJob dead-letters its file), naming the window
    with pytest.raises(SlotWaitPastWindow, match=r"past slot_wait_window 48h: .*already has 2 jobs"):
        _attempt(config, jobs, 1000.0 + 48 * 3600, ScriptedBackend())


def test_polling_backs_off_up_to_the_maximum(config: PipelineConfig, jobs: JobTable) -> None:
    # Given a running job
    backend = ScriptedBackend([BackendStatus(JobStateName.RUNNING)] * 6)
    state = started(config, jobs, backend)
    # When it is polled six times
    waits = []
    for _ in range(6):
        state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
        waits.append(state.poll.wait_seconds)  # type: ignore[union-attr]
    # Then the wait grows by 1.5x and stops at max_interval_seconds
    assert waits == [90, 135, 203, 300, 300, 300]


def test_repeated_status_failures_make_the_job_unreachable(config: PipelineConfig, jobs: JobTable) -> None:
    # Given status calls that keep failing (max_failed_polls is 3)
    backend = ScriptedBackend([BackendUnavailable("ThrottlingException")] * 3)
    state = started(config, jobs, backend)
    # When polled three times
    states = []
    for _ in range(3):
        state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
        states.append(state.status.state)  # type: ignore[union-attr]
    # Then the first two keep it running and the third gives up with the reason
    assert states == [JobStateName.RUNNING, JobStateName.RUNNING, JobStateName.UNREACHABLE]
    assert "3 status calls failed in a row" in state.status.reason  # type: ignore[union-attr,operator]


def test_a_success_resets_the_failure_count(config: PipelineConfig, jobs: JobTable) -> None:
    # Given two failures then a good answer then a failure
    backend = ScriptedBackend(
        [
            BackendUnavailable("x"),
            BackendUnavailable("x"),
            BackendStatus(JobStateName.RUNNING),
            BackendUnavailable("x"),
        ]
    )
    state = started(config, jobs, backend)
    for _ in range(4):
        state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
    # Then only the last failure counts
    assert state.poll.failures == 1  # type: ignore[union-attr]
    assert state.status.state is JobStateName.RUNNING  # type: ignore[union-attr]


def test_a_job_past_its_deadline_is_stopped_and_expired(config: PipelineConfig, jobs: JobTable) -> None:
    # Given a job still running after its 72 h timeout
    backend = ScriptedBackend([BackendStatus(JobStateName.RUNNING)])
    state = started(config, jobs, backend)
    # When polled after the deadline
    state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 1000.0 + 73 * 3600)
    # Then the remote job is stopped and the job expires with the reason
    assert backend.cancelled == ["osb-msmarco-1-000"]
    assert state.status.state is JobStateName.EXPIRED  # type: ignore[union-attr]
    assert "timeout_hours" in state.status.reason  # type: ignore[union-attr,operator]


def test_a_jobs_age_is_the_share_of_its_timeout_it_has_used(config: PipelineConfig, jobs: JobTable) -> None:
    # Given a job started at t=1000 s with the 72 h polling timeout
    state = started(config, jobs, ScriptedBackend())
    assert state.poll is not None
    polling = config.inference.polling
    # When its age is measured at the start, after 18 h, after 54 h and past the deadline
    used = [timeout_used_percent(state.poll, polling, 1000 + hours * 3600) for hours in (0, 18, 54, 80)]
    # Then it is the part of timeout_hours used: the job-age alarm fires past 75, PollJob expires it at 100
    assert used[:3] == [0.0, 25.0, 75.0]
    assert used[3] > 100


def test_starts_never_hold_more_slots_than_the_limit(jobs: JobTable) -> None:
    # Given 20 jobs of a pipeline with 3 slots, all starting (DynamoDB evaluates each conditional write
    # atomically, so their order is all a race can change)
    job_ids = [f"msmarco-{n}" for n in range(20)]
    granted = [jobs.acquire_slot("msmarco", job_id, 3, 0.0) for job_id in job_ids]
    # Then exactly 3 got a slot, and they are the holders
    winners = {job_id for job_id, ok in zip(job_ids, granted, strict=True) if ok}
    assert len(winners) == 3 and jobs.slot_holders("msmarco") == winners
    # When a holder asks again (a retried StartJob) it keeps its slot; when one releases, another gets it
    first = sorted(winners)[0]
    assert jobs.acquire_slot("msmarco", first, 3, 0.0)
    jobs.release_slot("msmarco", first)
    jobs.release_slot("msmarco", first)  # releasing twice is harmless
    waiting = next(job_id for job_id in job_ids if job_id not in winners)
    assert jobs.acquire_slot("msmarco", waiting, 3, 0.0)
    assert not jobs.acquire_slot("msmarco", first, 3, 0.0)
    assert len(jobs.slot_holders("msmarco")) == 3


def test_the_slot_goes_back_when_the_last_remote_job_ends_not_at_finalize(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given an upload of two remote jobs holding one of the pipeline's 2 slots, the other held too, and a
    # third upload queued for a slot
    jobs.create("msmarco-b", "msmarco", SOURCE)
    assert jobs.acquire_slot("msmarco", "msmarco-b", 2, 0.0)
    backend = ScriptedBackend(
        [
            BackendStatus(JobStateName.COMPLETED),
            BackendStatus(JobStateName.RUNNING),
            BackendStatus(JobStateName.COMPLETED),
        ]
    )
    state = started(config, jobs, backend, remote_jobs=2)
    assert not jobs.acquire_slot("msmarco", "msmarco-queued", 2, 0.0)
    # When the first remote job has ended and the second still runs
    state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
    # Then the slot is still held
    assert "msmarco-1" in jobs.slot_holders("msmarco")
    assert not jobs.acquire_slot("msmarco", "msmarco-queued", 2, 0.0)
    # When the second ends too, with its output not yet ingested
    state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2100.0)
    assert state.status is not None and state.status.ready == 2
    # Then the slot is free for the queued upload while this one ingests
    assert "msmarco-1" not in jobs.slot_holders("msmarco")
    assert jobs.acquire_slot("msmarco", "msmarco-queued", 2, 0.0)
    # And polling again, and releasing at the end as Finalize does, take nobody else's slot
    poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2200.0)
    jobs.release_slot("msmarco", "msmarco-1")
    assert jobs.slot_holders("msmarco") == {"msmarco-b", "msmarco-queued"}


def test_poll_job_gives_the_slot_back_through_the_release_it_is_given(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given an upload of two remote jobs, and the release the handler wires (which also wakes the oldest
    # waiting job, steps/support/slot_wake.py), recorded
    backend = ScriptedBackend(
        [
            BackendStatus(JobStateName.COMPLETED),
            BackendStatus(JobStateName.RUNNING),
            BackendStatus(JobStateName.COMPLETED),
        ]
    )
    state = started(config, jobs, backend, remote_jobs=2)
    released: list[tuple[str, str]] = []

    def release(pipeline: str, job_id: str) -> None:
        released.append((pipeline, job_id))
        jobs.release_slot(pipeline, job_id)

    # When one remote job has ended, then both
    state = poll_job(
        state, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0, release_slot=release
    )
    first = list(released)
    poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2100.0, release_slot=release)

    # Then nothing is released while one still runs, and the slot goes back through it once both ended
    assert first == []
    assert released == [("msmarco", "msmarco-1")]
    assert "msmarco-1" not in jobs.slot_holders("msmarco")


def test_an_upload_of_three_remote_jobs_starts_all_and_reruns_find_them(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a job prepared into three remote jobs
    backend = ScriptedBackend()
    # When StartJob runs, and runs again (a retried StartJob)
    state = started(config, jobs, backend, remote_jobs=3)
    again = started(config, jobs, backend, remote_jobs=3)
    # Then each remote job has its own name, input and output place, and the re-run asks for the same names
    names = ["osb-msmarco-1-000", "osb-msmarco-1-001", "osb-msmarco-1-002"]
    assert backend.submitted == names + names
    assert [(remote.id, remote.index, remote.records) for remote in state.remotes] == [
        (name, n, 3) for n, name in enumerate(names)
    ]
    assert state.remotes == again.remotes
    # And the job table lists them all, so a cancel can stop every one
    recorded = jobs.get("msmarco-1")["remote_jobs"]  # type: ignore[index]
    assert [ref["id"] for ref in recorded] == names


def test_polling_says_which_remote_jobs_finished_and_fails_a_part_without_failing_the_job(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given three remote jobs: the first completes at the first poll, the second fails at the second, the
    # third completes at the third
    running, done = BackendStatus(JobStateName.RUNNING), BackendStatus(JobStateName.COMPLETED)
    failed = BackendStatus(JobStateName.FAILED, reason="All 40 records failed")
    backend = ScriptedBackend([done, running, running, failed, running, done])
    state = started(config, jobs, backend, remote_jobs=3)
    # When polled
    first = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
    # Then the job runs on with one remote job ready to ingest
    assert (first.status.state, first.status.ready) == (JobStateName.RUNNING, 1)  # type: ignore[union-attr]
    # When it is ingested (PlanIngest marks it) and polled again
    ingested = first.model_copy(
        update={"remotes": [first.remotes[0].model_copy(update={"ingested": True}), *first.remotes[1:]]}
    )
    second = poll_job(ingested, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
    # Then the finished one is not polled again, the failed one is noted, and nothing new is ready
    assert (second.status.state, second.status.ready) == (JobStateName.RUNNING, 0)  # type: ignore[union-attr]
    assert [remote.state for remote in second.remotes] == [
        JobStateName.COMPLETED,
        JobStateName.FAILED,
        JobStateName.RUNNING,
    ]
    # When the last completes
    third = poll_job(second, config=config, backend=backend, jobs=jobs, now=lambda: 2000.0)
    # Then the job is PARTIALLY_COMPLETED, names the failed remote job and its reason, and one is ready
    assert third.status is not None and (third.status.state, third.status.ready) == (
        JobStateName.PARTIALLY_COMPLETED,
        1,
    )
    assert third.status.reason == "remote job 2 of 3 (osb-msmarco-1-001) FAILED: All 40 records failed"
    assert backend.statuses == []  # six answers for six status calls: ended jobs were not asked again


def test_an_expired_job_stops_every_remote_job_still_running(config: PipelineConfig, jobs: JobTable) -> None:
    # Given three remote jobs, one already completed
    backend = ScriptedBackend(
        [BackendStatus(JobStateName.COMPLETED)] + [BackendStatus(JobStateName.RUNNING)] * 2
    )
    state = started(config, jobs, backend, remote_jobs=3)
    # When polled past the deadline
    state = poll_job(state, config=config, backend=backend, jobs=jobs, now=lambda: 1000.0 + 73 * 3600)
    # Then the two still running are stopped and the job expires
    assert backend.cancelled == ["osb-msmarco-1-001", "osb-msmarco-1-002"]
    assert state.status is not None and state.status.state is JobStateName.EXPIRED


def test_a_job_prepared_before_remote_jobs_were_grouped_is_one_remote_job(
    config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a job whose Prepare ran before a deploy that added grouping (no `prepared.jobs`)
    fresh = prepared_state()
    assert fresh.prepared is not None
    old = fresh.model_copy(update={"prepared": fresh.prepared.model_copy(update={"jobs": []})})
    jobs.create("msmarco-1", "msmarco", SOURCE)
    backend = ScriptedBackend()
    # When it starts
    state = start_job(
        old, config=config, backend=backend, now=lambda: 0.0, store=JobStore(jobs, None, "osb-out", "osb-dlq")
    )
    # Then its whole input is one remote job
    assert backend.submitted == ["osb-msmarco-1-000"]
    assert [(remote.records, remote.index) for remote in state.remotes] == [(3, 0)]
