"""`osbatch watch <job>` (and `submit --wait`, the demo): a job's progress until it ends.

At a terminal, rich progress bars (rich.readthedocs.io, "Progress Display"): one per phase (prepared,
embedded, indexed, dead-lettered) against the records in, with rate and time left, and one per remote
job with the service's own count where it reports one, else its elapsed time. Anywhere else (a pipe, a
file, CI) a plain line whenever a number changes, or with --json one JSON line per change, so scripts
read the same numbers. The command exits with the job's outcome (cli.exit_codes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cli.exit_codes import ExitCode
from cli.progress import JobProgress, RemoteCounter, job_progress, read_parts, records_per_remote
from osbatch.models import JobStateName

SUCCEEDED = frozenset({JobStateName.COMPLETED.value, JobStateName.PARTIALLY_COMPLETED.value})
PHASES = (
    ("prepared", "prepared"),
    ("embedded", "embedded"),
    ("indexed", "indexed"),
    ("dead-lettered", "dead_lettered"),
)


def exit_code(progress: JobProgress) -> ExitCode:
    """OK for a job that completed (partially: its dead letters are in the report), FAILED otherwise."""
    return ExitCode.OK if progress.state in SUCCEEDED else ExitCode.FAILED


@dataclass
class ProgressSource:
    """Snapshots of one job from the target's job table, output bucket and, while it runs, the service."""

    jobs: Any
    s3: Any
    output_bucket: str
    counter: RemoteCounter | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def snapshot(self, job_id: str) -> JobProgress | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        refs = list(job.get("remote_jobs") or [])
        counts, finished = self.jobs.live_counts(job_id)
        running = job["state"] == JobStateName.RUNNING.value
        return job_progress(
            job,
            chunk_counts=(counts.lines, counts.indexed, counts.dead_lettered),
            chunks_done=finished,
            records_per_remote=records_per_remote(read_parts(self.s3, self.output_bucket, job_id), refs)
            if refs
            else {},
            remote_counts=self.counter.counts(refs) if self.counter and running and refs else {},
            now=self.now(),
        )


class Renderer(Protocol):
    def show(self, progress: JobProgress) -> None: ...

    def close(self) -> None: ...


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def plain_line(progress: JobProgress) -> str:
    """One line per change for logs: the state, each phase against the records in, chunks and remotes."""
    total = _count(progress.records_in)
    phases = " ".join(f"{label}={_count(getattr(progress, key))}/{total}" for label, key in PHASES)
    line = f"{progress.job_id} {progress.state} {phases}"
    if progress.remotes:
        line += f" remote={progress.remote_jobs_done}/{len(progress.remotes)}"
        if progress.remote_status:
            line += f"({progress.remote_status})"
    if progress.chunks is not None:
        line += f" chunks={progress.chunks_done}/{progress.chunks}"
    return line


class PlainRenderer:
    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self._emit = emit
        self._last = ""

    def show(self, progress: JobProgress) -> None:
        line = plain_line(progress)
        if line != self._last:
            self._last = line
            self._emit(line)

    def close(self) -> None:
        pass


class JsonRenderer:
    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self._emit = emit
        self._last = ""

    def show(self, progress: JobProgress) -> None:
        line = progress.as_json()
        if _without_elapsed(line) != _without_elapsed(self._last):
            self._emit(line)
        self._last = line

    def close(self) -> None:
        pass


def _without_elapsed(line: str) -> str:
    return line.split('"elapsed_seconds"', 1)[0]


class RichRenderer:
    """Bars that move while the job runs; one set per job, so the demo can watch several at once."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[tuple[str, str], Any] = {}
        self._started: dict[str, float] = {}
        self._progress.start()

    def _task(self, job: str, name: str, description: str) -> Any:
        key = (job, name)
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(description, total=None, rate="")
        return self._tasks[key]

    def show(self, progress: JobProgress) -> None:
        job = progress.job_id
        started = self._started.setdefault(job, time.monotonic() - progress.elapsed_seconds)
        seconds = max(time.monotonic() - started, 1e-6)
        self._progress.update(
            self._task(job, "state", ""), description=f"[bold]{job}[/bold] {progress.state}", visible=True
        )
        for label, key in PHASES:
            value = getattr(progress, key)
            task = self._task(job, key, f"  {label}")
            rate = f"{value / seconds:,.1f} rec/s" if value else ""
            self._progress.update(task, total=progress.records_in, completed=value or 0, rate=rate)
        for remote in progress.remotes:
            task = self._task(job, f"remote:{remote.name}", f"  {remote.name}")
            if remote.processed is None:  # SageMaker: the service counts nothing while it runs
                note = progress.remote_status or "running"
                if progress.estimated_seconds:  # elapsed against the plan's estimate: the only gauge here
                    elapsed, estimated = progress.elapsed_seconds, progress.estimated_seconds
                    note += f", {elapsed:,.0f} s of ~{estimated:,.0f} s estimated"
                self._progress.update(
                    task, total=None, completed=0, rate=f"{note} (no count from the service)"
                )
            else:
                failed = f", {remote.failed} failed" if remote.failed else ""
                self._progress.update(
                    task, total=remote.records, completed=remote.processed, rate=f"by the service{failed}"
                )
        if progress.chunks:
            task = self._task(job, "chunks", "  ingest chunks")
            self._progress.update(task, total=progress.chunks, completed=progress.chunks_done, rate="")

    def close(self) -> None:
        self._progress.stop()


def renderer_for(*, as_json: bool, terminal: bool) -> Renderer:
    if as_json:
        return JsonRenderer()
    return RichRenderer() if terminal else PlainRenderer()


def watch_job(
    source: ProgressSource,
    job_id: str,
    renderer: Renderer,
    *,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> JobProgress:
    """Show the job's progress until it ends; its last snapshot."""
    try:
        while True:
            progress = source.snapshot(job_id)
            if progress is None:
                raise LookupError(f"no job {job_id}; `osbatch jobs` lists them")
            renderer.show(progress)
            if progress.terminal:
                return progress
            sleep(interval)
    finally:
        renderer.close()


def watch_jobs(
    source: ProgressSource,
    job_ids: list[str],
    renderer: Renderer,
    *,
    timeout: float,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, JobProgress]:
    """Several jobs at once (the demo's files) until all have ended; TimeoutError after `timeout`."""
    deadline = clock() + timeout
    ended: dict[str, JobProgress] = {}
    try:
        while clock() < deadline:
            for job_id in job_ids:
                if job_id in ended:
                    continue
                progress = source.snapshot(job_id)
                if progress is None:
                    continue
                renderer.show(progress)
                if progress.terminal:
                    ended[job_id] = progress
            if len(ended) == len(job_ids):
                return ended
            sleep(interval)
    finally:
        renderer.close()
    raise TimeoutError(f"jobs did not finish within {timeout:g}s; `osbatch jobs` shows where they are")
