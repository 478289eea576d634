"""`osbatch batch-ingest` progress: records indexed and dead-lettered, their rate, and the time left.

The records a request holds are unknown until its files are read, so the time left comes from what is
known: the input bytes read of the files' total (a local run reads every byte once, in order), or on the
stack the chunks reported of those planned. Three displays, as `osbatch watch` has (cli/watch.py):
- rich bars at a terminal (rich.readthedocs.io, "Progress Display"): input read, with its speed and time
  left, and the records indexed and dead-lettered, each with its rate;
- a plain line per chunk anywhere else (a pipe, a file, CI);
- with --json, one JSON line per event: start, progress (per chunk), done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from osbatch.batch_ingestion.run import BatchReport


@dataclass(frozen=True)
class BatchProgress:
    run_id: str
    records_in: int
    indexed: int
    dead_lettered: int
    chunks_done: int
    chunks: int | None  # planned; None where the plan is not known up front (a local run plans per file)
    bytes_done: int | None  # input read; None where it is not known (on the stack)
    bytes_total: int | None
    elapsed_seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records_in / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def fraction_done(self) -> float | None:
        if self.bytes_total and self.bytes_done is not None:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.chunks:
            return min(1.0, self.chunks_done / self.chunks)
        return None

    @property
    def eta_seconds(self) -> float | None:
        """The time the rest takes at the speed so far; None before anything is done."""
        fraction = self.fraction_done
        if not fraction:
            return None
        return self.elapsed_seconds * (1 - fraction) / fraction

    def as_json(self) -> str:
        return json.dumps(
            {
                "type": "progress",
                **asdict(self),
                "records_per_second": round(self.records_per_second, 1),
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            }
        )


@dataclass
class BatchTracker:
    """Counts a run's input bytes as they are read and times it: the snapshots the displays show."""

    run_id: str
    bytes_total: int | None
    chunks: int | None = None
    clock: Callable[[], float] = time.monotonic
    bytes_read: int = 0
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def read(self, size: int) -> None:
        self.bytes_read += size

    def snapshot(self, report: BatchReport, *, finished: bool = False) -> BatchProgress:
        done = None
        if self.bytes_total is not None:
            # Reads run a little past a chunk's end to finish its last line: never more than the total.
            done = self.bytes_total if finished else min(self.bytes_read, self.bytes_total)
        return BatchProgress(
            run_id=self.run_id,
            records_in=report.records_in,
            indexed=report.indexed,
            dead_lettered=report.dead_lettered,
            chunks_done=report.chunks,
            chunks=self.chunks,
            bytes_done=done,
            bytes_total=self.bytes_total,
            elapsed_seconds=self.clock() - self.started,
        )


class BatchDisplay(Protocol):
    def start(self, line: str, tracker: BatchTracker) -> None: ...

    def reading(self, tracker: BatchTracker) -> None: ...

    def chunk(self, progress: BatchProgress, line: str) -> None: ...

    def end(self, report: BatchReport, line: str) -> None: ...


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def rate_and_eta(progress: BatchProgress) -> str:
    """', 1,234.5 records/s, 40% read, 1m05s left' for the plain lines."""
    fraction = progress.fraction_done
    done = "" if fraction is None else f", {fraction:.0%} {'read' if progress.bytes_total else 'done'}"
    return f"{progress.records_per_second:,.1f} records/s{done}, {_duration(progress.eta_seconds)} left"


class PlainBatchDisplay:
    """What batch-ingest always printed (a line at the start, per chunk, at the end), with rate and ETA."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self._say = say

    def start(self, line: str, tracker: BatchTracker) -> None:
        self._say(line)

    def reading(self, tracker: BatchTracker) -> None:
        pass

    def chunk(self, progress: BatchProgress, line: str) -> None:
        self._say(f"{line}; {rate_and_eta(progress)}")

    def end(self, report: BatchReport, line: str) -> None:
        self._say(line)


class JsonBatchDisplay:
    """One JSON line per event; the human lines are not printed, so stdout stays JSON lines only."""

    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self._emit = emit

    def start(self, line: str, tracker: BatchTracker) -> None:
        self._emit(
            json.dumps(
                {
                    "type": "start",
                    "run_id": tracker.run_id,
                    "bytes_total": tracker.bytes_total,
                    "chunks": tracker.chunks,
                }
            )
        )

    def reading(self, tracker: BatchTracker) -> None:
        pass

    def chunk(self, progress: BatchProgress, line: str) -> None:
        self._emit(progress.as_json())

    def end(self, report: BatchReport, line: str) -> None:
        self._emit(json.dumps({"type": "done", **asdict(report)}))


class RichBatchDisplay:
    """Bars that move while the files are read: input (bytes, or chunks on the stack) with its time left,
    and records indexed and dead-lettered with their rates."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = console or Console()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._input: Any = None
        self._records: dict[str, Any] = {}
        self._tracker: BatchTracker | None = None

    def start(self, line: str, tracker: BatchTracker) -> None:
        self._console.print(line, markup=False, highlight=False)
        self._tracker = tracker
        unit = "input bytes" if tracker.bytes_total is not None else "chunks"
        self._input = self._progress.add_task(
            f"  {unit}", total=tracker.bytes_total or tracker.chunks, amount="", rate=""
        )
        for name in ("indexed", "dead-lettered"):
            self._records[name] = self._progress.add_task(f"  {name}", total=None, amount="0", rate="")
        self._progress.start()

    def reading(self, tracker: BatchTracker) -> None:
        if tracker.bytes_total:
            self._progress.update(self._input, completed=min(tracker.bytes_read, tracker.bytes_total))

    def chunk(self, progress: BatchProgress, line: str) -> None:
        seconds = max(progress.elapsed_seconds, 1e-6)
        if progress.bytes_total:
            done, total = progress.bytes_done or 0, progress.bytes_total
            amount = f"{done:,}/{total:,} B"
        else:
            done, total = progress.chunks_done, progress.chunks or 0
            amount = f"{done}/{total or '?'} chunks"
        self._progress.update(
            self._input,
            completed=done,
            total=total or None,
            amount=amount,
            rate=f"chunk {progress.chunks_done}",
        )
        for name, value in (("indexed", progress.indexed), ("dead-lettered", progress.dead_lettered)):
            self._progress.update(
                self._records[name],
                completed=value,
                amount=f"{value:,} of {progress.records_in:,} records",
                rate=f"{value / seconds:,.1f} records/s",
            )

    def end(self, report: BatchReport, line: str) -> None:
        if self._tracker is not None and self._tracker.bytes_total:  # the last line's bytes are read too
            self._progress.update(self._input, completed=self._tracker.bytes_total)
        self._progress.stop()
        self._console.print(line, markup=False, highlight=False)


def batch_display(*, as_json: bool, terminal: bool, say: Callable[[str], None] = print) -> BatchDisplay:
    if as_json:
        return JsonBatchDisplay()
    return RichBatchDisplay() if terminal else PlainBatchDisplay(say)


class CountingStore:
    """An ObjectStore whose reads tell the tracker how many bytes came in (the rest is passed through)."""

    def __init__(self, store: Any, on_read: Callable[[int], None]) -> None:
        self._store, self._on_read = store, on_read

    def get_object(self, **kwargs: Any) -> Any:
        response = dict(self._store.get_object(**kwargs))
        response["Body"] = _CountingBody(response["Body"], self._on_read)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _CountingBody:
    def __init__(self, body: Any, on_read: Callable[[int], None]) -> None:
        self._body, self._on_read = body, on_read

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        for piece in self._body.iter_chunks(size):
            self._on_read(len(piece))
            yield piece

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)
