"""The service-neutral job core: a thread per job, its states, the stop flag, and bounded batches."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from local.emulators.batching import EmbedRequest, embed_in_batches
from local.emulators.jobs import JobContext, JobFailed, JobRecord, JobRunner, JobState


def run_to_end(runner: JobRunner, job_id: str) -> JobRecord:
    record = runner.wait(job_id, timeout=10)
    assert record.finished.is_set(), "job did not finish"
    return record


def test_work_that_returns_completes_the_job() -> None:
    # Given a runner and work that counts its records
    runner = JobRunner()
    seen: list[JobState] = []

    def work(context: JobContext) -> None:
        context.add_progress(done=3)

    # When the job runs
    runner.start("j", work, on_change=lambda record: seen.append(record.state))
    record = run_to_end(runner, "j")

    # Then it is Completed with an end time and its counts, and the callback saw each state
    assert record.state is JobState.COMPLETED
    assert record.ended_at is not None and record.ended_at >= record.started_at
    assert record.records_done == 3
    assert seen == [JobState.RUNNING, JobState.COMPLETED]


def test_job_failed_keeps_the_service_worded_reason() -> None:
    # Given work that rejects its input
    runner = JobRunner()

    def work(context: JobContext) -> None:
        raise JobFailed("ClientError: bad line")

    # When / Then the job fails with exactly that reason
    runner.start("j", work)
    record = run_to_end(runner, "j")
    assert (record.state, record.failure_reason) == (JobState.FAILED, "ClientError: bad line")


def test_an_unexpected_error_is_worded_by_the_service() -> None:
    # Given a runner whose service words its internal errors, and work with a bug
    runner = JobRunner(describe_unexpected=lambda error: f"InternalServerError: {error}")

    def work(context: JobContext) -> None:
        raise KeyError("oops")

    # When / Then the job fails with the service's wording
    runner.start("j", work)
    assert run_to_end(runner, "j").failure_reason == "InternalServerError: 'oops'"


def test_stop_is_seen_at_the_next_check_and_ends_the_job_stopped() -> None:
    # Given work that waits between two batches
    runner = JobRunner()
    between_batches = threading.Event()
    resume = threading.Event()

    def work(context: JobContext) -> None:
        between_batches.set()
        resume.wait(5)
        context.check_stop()
        raise AssertionError("the stop check should have ended the work")

    runner.start("j", work)
    assert between_batches.wait(5)

    # When a stop is requested
    stopping = runner.stop("j").state
    resume.set()

    # Then the job is Stopping, then Stopped, with no failure reason
    record = run_to_end(runner, "j")
    assert stopping is JobState.STOPPING
    assert (record.state, record.failure_reason) == (JobState.STOPPED, None)


def test_stop_after_the_end_changes_nothing() -> None:
    # Given a finished job
    runner = JobRunner()
    runner.start("j", lambda context: None)
    run_to_end(runner, "j")

    # When / Then a late stop leaves it Completed
    assert runner.stop("j").state is JobState.COMPLETED


class CountingEmbedder:
    dimension = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(text), 1.0] for text in texts], dtype=np.float32)


def test_batches_are_bounded_and_records_keep_their_order_and_vectors() -> None:
    # Given records of one or two texts, and bounds of 3 texts or 10 bytes per batch
    requests = [
        EmbedRequest("r1", ["a"], size=4),
        EmbedRequest("r2", ["bb", "ccc"], size=4),
        EmbedRequest("r3", ["dddd"], size=4),
        EmbedRequest("r4", ["e"], size=9),
    ]
    embedder = CountingEmbedder()
    checks: list[int] = []

    # When they are embedded in batches
    results = list(
        embed_in_batches(requests, embedder, max_texts=3, max_bytes=10, before_batch=lambda: checks.append(1))
    )

    # Then no batch passes a bound, a stop check precedes each batch, and each record gets its own rows
    assert embedder.calls == [["a", "bb", "ccc"], ["dddd"], ["e"]]
    assert len(checks) == 3
    assert [payload for payload, _ in results] == ["r1", "r2", "r3", "r4"]
    assert [vectors[:, 0].tolist() for _, vectors in results] == [[1.0], [2.0, 3.0], [4.0], [1.0]]
