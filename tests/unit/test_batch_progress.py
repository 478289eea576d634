"""`osbatch batch-ingest` progress: records indexed and dead-lettered, their rate and the time left.

Rendering is rich bars at a terminal, a line per chunk elsewhere, JSON lines with --json; the numbers come
from the run's chunks and the input bytes it has read (a local run) or the chunks the stack reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cli.batch_ingest import load_request
from cli.batch_ingest import run as run_command
from cli.batch_progress import (
    BatchTracker,
    CountingStore,
    JsonBatchDisplay,
    PlainBatchDisplay,
    RichBatchDisplay,
    batch_display,
)
from cli.batch_stack import _follow
from osbatch.batch_ingestion.local_files import LocalFiles
from osbatch.batch_ingestion.run import BatchReport
from osbatch.config import BulkConfig
from osbatch.dal.chunks import ChunkCounts, ChunkTally
from tests.unit.fake_opensearch import Cluster, FakeIndices


def ticking(step: float) -> Callable[[], float]:
    """A clock that moves `step` seconds at each look."""
    times: Iterator[float] = (n * step for n in range(10_000))
    return lambda: next(times)


def test_rate_and_time_left_come_from_the_records_and_bytes_so_far() -> None:
    # Given a run of 1,000 input bytes that has read 250 of them and 40 records in 10 s
    tracker = BatchTracker("batch-1", 1000, clock=ticking(10))
    tracker.read(250)
    # When a snapshot is taken
    progress = tracker.snapshot(BatchReport("batch-1", "docs", 1, 1, 40, 38, 2))
    # Then the rate is the records per second so far, and the rest takes three times as long again
    assert progress.records_per_second == 4.0
    assert progress.fraction_done == 0.25 and progress.eta_seconds == 30.0
    # And reads past the total (a chunk's last line) never show more than all of it
    tracker.read(10_000)
    assert tracker.snapshot(BatchReport("batch-1", "docs", 1)).bytes_done == 1000


def test_nothing_done_yet_has_no_time_left_to_tell() -> None:
    tracker = BatchTracker("batch-1", 1000, clock=ticking(1))
    assert tracker.snapshot(BatchReport("batch-1", "docs", 1)).eta_seconds is None


def test_reads_through_the_counting_store_are_counted(tmp_path: Path) -> None:
    # Given a file read through the store as ingest reads it, by chunks of its body
    data = tmp_path / "a.jsonl"
    data.write_bytes(b"x" * 2500)
    read: list[int] = []
    body = CountingStore(LocalFiles(), read.append).get_object(Bucket="", Key=str(data), Range="bytes=500-")
    # When the body is read
    content = b"".join(body["Body"].iter_chunks(1000))
    # Then every byte read was counted, in the pieces it came in
    assert len(content) == 2000 and read == [1000, 1000]


class IndexedCluster(Cluster):
    def __init__(self, *indexes: str) -> None:
        super().__init__()
        self.indices = FakeIndices(existing={name: {} for name in indexes})


def two_file_request(tmp_path: Path) -> Any:
    """Two files of two 23-byte lines each; the second line of the second is not JSON: dead-lettered."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text('{"id": 1, "v": [1, 2]}\n{"id": 2, "v": [3, 4]}\n')
    second.write_text('{"id": 3, "v": [5, 6]}\nthis line is not JSON!\n')
    body = {
        "index_name": "docs",
        "field_map": {"vector": "$.v", "_id": "$.id"},
        "data_source": {"type": "file", "source": [str(first), str(second)]},
    }
    (tmp_path / "request.json").write_text(json.dumps(body))
    return load_request(tmp_path / "request.json")


def run_with(display: Any, tmp_path: Path) -> BatchReport:
    return run_command(
        two_file_request(tmp_path), opensearch=IndexedCluster("docs"), s3=None,
        dead_letter_dir=tmp_path / "dl", bulk=BulkConfig(), display=display, clock=ticking(2),
    )  # fmt: skip


def test_plain_lines_give_each_chunk_with_the_rate_and_the_time_left(tmp_path: Path) -> None:
    # Given the plain display (stdout is not a terminal)
    said: list[str] = []
    # When a two-file request runs (one chunk per file; the clock moves 2 s at each look)
    run_with(PlainBatchDisplay(said.append), tmp_path)
    # Then there is a line per chunk: its counts, then the rate so far, the share read and the time left
    chunk_lines = [line for line in said if line.startswith("  chunk")]
    assert chunk_lines[0].startswith("  chunk 0: 2 records, 2 indexed, 0 dead-lettered")
    assert chunk_lines[0].endswith("; 1.0 records/s, 50% read, 2s left")
    assert chunk_lines[1].startswith("  chunk 1: 2 records, 1 indexed, 1 dead-lettered")
    assert chunk_lines[1].endswith("; 1.0 records/s, 100% read, 0s left")
    assert said[-1].startswith("done: 4 records in, 3 indexed, 1 dead-lettered")


def test_json_lines_carry_every_number_and_nothing_else(tmp_path: Path) -> None:
    # Given the --json display
    lines: list[str] = []
    # When the request runs
    report = run_with(JsonBatchDisplay(lines.append), tmp_path)
    # Then every line is JSON: the start, a progress line per chunk, and the report at the end
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events] == ["start", "progress", "progress", "done"]
    assert events[0]["bytes_total"] == sum(p.stat().st_size for p in tmp_path.glob("*.jsonl"))
    last = events[2]
    assert (last["records_in"], last["indexed"], last["dead_lettered"], last["chunks_done"]) == (4, 3, 1, 2)
    assert last["bytes_done"] == last["bytes_total"] and last["eta_seconds"] == 0
    assert events[1]["records_per_second"] == 1.0 and events[1]["eta_seconds"] == 2.0
    assert events[-1]["indexed"] == report.indexed == 3


def test_rich_bars_show_input_read_and_records_with_their_rates(tmp_path: Path) -> None:
    from rich.console import Console

    # Given a terminal-like console
    console = Console(record=True, width=160, force_terminal=False)
    # When the request runs with the bars
    run_with(RichBatchDisplay(console=console), tmp_path)
    text = console.export_text()
    # Then the input bar, the indexed and dead-lettered counts and their rates were on screen
    assert "input bytes" in text and "100%" in text
    assert "3 of 4 records" in text and "1 of 4 records" in text and "records/s" in text
    # And the run's first and last lines around them
    assert "2 file(s)" in text and "done: 4 records in, 3 indexed, 1 dead-lettered" in text


def test_the_display_follows_the_output_choice() -> None:
    assert isinstance(batch_display(as_json=True, terminal=True), JsonBatchDisplay)
    assert isinstance(batch_display(as_json=False, terminal=False), PlainBatchDisplay)


class Execution:
    """describe_execution answers: running twice, then succeeded."""

    def __init__(self) -> None:
        self.statuses = ["RUNNING", "RUNNING", "SUCCEEDED"]

    def describe_execution(self, executionArn: str) -> dict[str, str]:
        return {"status": self.statuses.pop(0)}


class Chunks:
    """The job table while the stack's Map runs: one of two chunks reported, then both."""

    def __init__(self) -> None:
        self.tallies = [
            ChunkTally(ChunkCounts(10, 9, 1), frozenset({0})),
            ChunkTally(ChunkCounts(20, 18, 2), frozenset({0, 1})),
            ChunkTally(ChunkCounts(20, 18, 2), frozenset({0, 1})),
        ]

    def get(self, job_id: str) -> dict[str, Any]:
        return {"chunks": 2}

    def chunk_totals(self, job_id: str, planned: int) -> ChunkTally:
        return self.tallies.pop(0)


def test_on_the_stack_progress_is_the_chunks_reported_of_those_planned() -> None:
    # Given a run on the stack, followed through the job table
    lines: list[str] = []
    tracker = BatchTracker("batch-job", None, clock=ticking(5))
    # When it is followed to its end with the JSON display
    status = _follow(
        Execution(), "arn", Chunks(), "batch-job", tracker, JsonBatchDisplay(lines.append),  # type: ignore[arg-type]
        lambda seconds: None,
    )  # fmt: skip
    # Then each change is one line, its share done from the chunks, and the unchanged look prints nothing
    events = [json.loads(line) for line in lines]
    assert status == "SUCCEEDED"
    assert [(e["chunks_done"], e["chunks"], e["indexed"]) for e in events] == [(1, 2, 9), (2, 2, 18)]
    assert events[0]["eta_seconds"] == events[0]["elapsed_seconds"]  # half done: as long again
    assert events[1]["eta_seconds"] == 0


def test_the_command_with_json_prints_json_lines_only(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    import osbatch.search.client
    from cli.exit_codes import ExitCode
    from cli.main import main

    # Given a request into an index the (fake) node has
    two_file_request(tmp_path)
    monkeypatch.setattr(osbatch.search.client, "opensearch_client", lambda *a, **k: IndexedCluster("docs"))
    # When `osbatch batch-ingest --json` runs it
    code = main([
        "batch-ingest", str(tmp_path / "request.json"), "--endpoint", "http://127.0.0.1:1",
        "--dead-letters", str(tmp_path / "dl"), "--json",
    ])  # fmt: skip
    # Then stdout is JSON lines from start to done, and the exit code says records were dead-lettered
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["type"] for e in events] == ["start", "progress", "progress", "done"]
    assert (events[-1]["indexed"], events[-1]["dead_lettered"]) == (3, 1)
    assert code == ExitCode.FAILED
