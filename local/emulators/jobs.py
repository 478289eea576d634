"""The service-neutral core of every batch emulator: a thread per job, its state, and a stop flag.

SageMaker Batch Transform, Bedrock batch inference and the OpenAI Batch API all run a job the same way:
accepted, running, then completed, failed or stopped, with a stop request honoured between batches.
Each service layer maps JobState to its own vocabulary and failures to its own wording.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class JobState(enum.StrEnum):
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in {JobState.STOPPED, JobState.COMPLETED, JobState.FAILED}


class JobStopped(Exception):
    """Raised by JobContext.check_stop(): the work unwinds (cleaning up) and the job ends Stopped."""


class JobFailed(Exception):
    """The job's input or model is at fault; `reason` is the service-worded FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class JobRecord:
    job_id: str
    state: JobState = JobState.RUNNING
    started_at: dt.datetime = field(default_factory=_now)
    ended_at: dt.datetime | None = None
    failure_reason: str | None = None
    records_done: int = 0
    records_failed: int = 0
    stop_requested: threading.Event = field(default_factory=threading.Event, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)
    on_change: Callable[[JobRecord], None] = field(default=lambda _record: None, repr=False)


class JobContext:
    """What a job's work function sees: the stop flag and its progress counters."""

    def __init__(self, record: JobRecord) -> None:
        self._record = record

    @property
    def job_id(self) -> str:
        return self._record.job_id

    def check_stop(self) -> None:
        """Call between batches: a stop request then ends the work at a clean boundary."""
        if self._record.stop_requested.is_set():
            raise JobStopped(self._record.job_id)

    def wait_for_stop(self) -> None:
        """Block until a stop is requested, then end the work Stopped (a job held on purpose)."""
        self._record.stop_requested.wait()
        raise JobStopped(self._record.job_id)

    def add_progress(self, done: int = 0, failed: int = 0) -> None:
        self._record.records_done += done
        self._record.records_failed += failed


Work = Callable[[JobContext], None]


def _internal_failure(error: BaseException) -> str:
    return f"InternalServerError: {type(error).__name__}: {error}"


# The most jobs each named runner had running at once since the last reset: what a test of a job cap
# (max_jobs_in_flight) asserts on, read over the emulators' fault route (faults.py).
PEAKS: dict[str, int] = {}


def reset_peaks() -> None:
    PEAKS.clear()


class JobRunner:
    """Runs each job's work in its own daemon thread and keeps every job's record.

    describe_unexpected turns an exception that is not JobFailed (a bug, S3 going away) into the
    service's FailureReason wording.
    """

    def __init__(
        self, describe_unexpected: Callable[[BaseException], str] = _internal_failure, name: str = "jobs"
    ) -> None:
        self._describe_unexpected = describe_unexpected
        self.name = name
        self._running = 0
        # Guards every state change together with its callback, so a stop and the job's end cannot
        # interleave and leave the service showing Stopping after Completed.
        self._lock = threading.RLock()
        self._jobs: dict[str, JobRecord] = {}

    def start(
        self, job_id: str, work: Work, on_change: Callable[[JobRecord], None] | None = None
    ) -> JobRecord:
        """Run work(context) on a new thread. A job id used before (moto reset its backend) starts afresh."""
        record = JobRecord(job_id)
        if on_change is not None:
            record.on_change = on_change
        with self._lock:
            self._jobs[job_id] = record
            self._running += 1
            PEAKS[self.name] = max(PEAKS.get(self.name, 0), self._running)
            self._notify(record)
        thread = threading.Thread(target=self._run, args=(record, work), name=f"job-{job_id}", daemon=True)
        thread.start()
        return record

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._jobs.get(job_id)

    def stop(self, job_id: str) -> JobRecord:
        """Ask a running job to stop. Returns its record; a finished job is left as it is."""
        with self._lock:
            record = self._jobs[job_id]
            if record.state.terminal or record.state is JobState.STOPPING:
                return record
            record.state = JobState.STOPPING
            record.stop_requested.set()
            self._notify(record)
        return record

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        with self._lock:
            record = self._jobs[job_id]
        record.finished.wait(timeout)
        return record

    def _run(self, record: JobRecord, work: Work) -> None:
        try:
            work(JobContext(record))
        except JobStopped:
            self._finish(record, JobState.STOPPED)
        except JobFailed as failure:
            self._finish(record, JobState.FAILED, failure.reason)
        except Exception as error:
            log.exception("job %s crashed", record.job_id)
            self._finish(record, JobState.FAILED, self._describe_unexpected(error))
        else:
            # A stop that arrives after the last check is too late: the work finished, as on AWS.
            self._finish(record, JobState.COMPLETED)

    def _finish(self, record: JobRecord, state: JobState, reason: str | None = None) -> None:
        with self._lock:
            self._running -= 1
            record.state = state
            record.failure_reason = reason
            record.ended_at = _now()
            self._notify(record)
        record.finished.set()

    @staticmethod
    def _notify(record: JobRecord) -> None:
        try:
            record.on_change(record)
        except Exception:
            log.exception("state callback of job %s failed", record.job_id)
