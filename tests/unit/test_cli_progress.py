"""Live progress (`osbatch watch`, `submit --wait`, the demo): the numbers move while a job runs.

Counts come from the job item, its chunk items (running chunks' checkpoints included), Prepare's parts
list and, while a remote job runs, the service's own counts (Bedrock's record counts, OpenAI's
request_counts). Rendering is rich bars at a terminal, a line per change elsewhere, JSON lines on request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from cli.exit_codes import ExitCode
from cli.main import main
from cli.progress import RemoteCounter, RemoteCounts, job_progress, records_per_remote
from cli.watch import JsonRenderer, PlainRenderer, ProgressSource, RichRenderer, exit_code, watch_job
from osbatch.backends.bedrock import BedrockBackend
from osbatch.config import BedrockJobConfig
from osbatch.contracts import job_parts_key
from osbatch.dal import JobTable
from osbatch.dal.chunks import ChunkCounts
from osbatch.models import JobStateName, SourceObject
from osbatch.models.ingest import Checkpoint

JOB = "docs-0123456789abcdef"
NOW = datetime(2026, 12, 6, 10, 1, 0, tzinfo=UTC)
REFS = [
    {
        "id": "osb-docs-000",
        "arn": "arn:aws:bedrock:us-east-1:1:model-invocation-job/a",
        "output_uri": "s3://o/0/",
    },
    {
        "id": "osb-docs-001",
        "arn": "arn:aws:bedrock:us-east-1:1:model-invocation-job/b",
        "output_uri": "s3://o/1/",
    },
]


def job_item(state: str, **fields: Any) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "pipeline": "docs",
        "state": state,
        "records_in": 300,
        "valid": 297,
        "dead_lettered": 3,
        "created_at": "2026-12-06T10:00:00Z",
        **fields,
    }


def snapshot(job: dict[str, Any], **sources: Any) -> Any:
    defaults: dict[str, Any] = {
        "chunk_counts": (0, 0, 0),
        "chunks_done": 0,
        "records_per_remote": {},
        "remote_counts": {},
        "now": NOW,
    }
    return job_progress(job, **(defaults | sources))


def test_during_inference_the_service_counts_move_the_embedded_phase() -> None:
    # Given a running job with two Bedrock jobs that have processed some of their records
    job = job_item("RUNNING", remote_jobs=REFS, remote_jobs_done=0, remote_status="InProgress")
    parts = [{"job": 0, "records": 150}, {"job": 1, "records": 100}, {"job": 1, "records": 47}]
    counts = {"osb-docs-000": RemoteCounts(120, 2, 150), "osb-docs-001": RemoteCounts(30)}
    # When a snapshot is taken
    progress = snapshot(job, records_per_remote=records_per_remote(parts, REFS), remote_counts=counts)
    # Then embedded is the services' sum, each remote job has its records and count, and nothing is indexed
    assert (progress.prepared, progress.embedded, progress.indexed, progress.dead_lettered) == (
        297,
        150,
        0,
        3,
    )
    assert [(r.name, r.records, r.processed, r.failed) for r in progress.remotes] == [
        ("osb-docs-000", 150, 120, 2),
        ("osb-docs-001", 147, 30, 0),
    ]
    assert progress.elapsed_seconds == 60


def test_a_service_without_counts_leaves_embedded_unknown_until_it_ends() -> None:
    # Given a running SageMaker job (the service reports no record counts)
    progress = snapshot(job_item("RUNNING", remote_jobs=REFS[:1]))
    # Then embedded is unknown, and the plain line says so rather than 0
    assert progress.embedded is None
    assert "embedded=?/300" in plain(progress)


def plain(progress: Any) -> str:
    lines: list[str] = []
    PlainRenderer(emit=lines.append).show(progress)
    return lines[0]


def test_during_ingest_running_chunks_count(jobs: JobTable) -> None:
    # Given an ingesting job: chunk 0 finished, chunk 1 still running with a checkpoint
    jobs.create(JOB, "docs", SourceObject(bucket="osb-in", key="docs/a.jsonl"))
    jobs.put_chunk(JOB, 0, ChunkCounts(100, 99, 1))
    jobs.save_checkpoint(JOB, 1, Checkpoint(offset=4096, lines=40, indexed=40, dead_lettered=0))
    # When the live counts are read
    counts, finished = jobs.live_counts(JOB)
    # Then the running chunk's indexed records count already, and one chunk has finished
    assert (counts.indexed, counts.dead_lettered, finished) == (139, 1, 1)
    progress = snapshot(
        job_item("INGESTING", chunks=3, remote_jobs=REFS),
        chunk_counts=(counts.lines, counts.indexed, counts.dead_lettered),
        chunks_done=finished,
    )
    assert (progress.embedded, progress.indexed, progress.dead_lettered) == (297, 139, 4)
    assert plain(progress).endswith("chunks=1/3")


def test_an_ended_job_shows_its_final_accounting() -> None:
    progress = snapshot(job_item("COMPLETED", indexed=295, dead_lettered=5), chunk_counts=(297, 295, 2))
    assert (progress.indexed, progress.dead_lettered, progress.terminal) == (295, 5, True)


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("COMPLETED", ExitCode.OK),
        ("PARTIALLY_COMPLETED", ExitCode.OK),
        ("FAILED", ExitCode.FAILED),
        ("EXPIRED", ExitCode.FAILED),
        ("CANCELLED", ExitCode.FAILED),
    ],
)
def test_the_exit_code_is_the_jobs_outcome(state: str, code: ExitCode) -> None:
    assert exit_code(snapshot(job_item(state))) == code


class ScriptedSource:
    """Snapshots in a given order, as a job table read during a run would give them."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self._jobs = jobs

    def snapshot(self, job_id: str) -> Any:
        return snapshot(self._jobs.pop(0) if len(self._jobs) > 1 else self._jobs[0])


def test_watch_prints_a_line_per_change_and_stops_at_the_end() -> None:
    # Given a job seen created, twice running unchanged, ingesting, then completed
    source = ScriptedSource(
        [
            job_item("CREATED"),
            job_item("RUNNING", remote_jobs=REFS[:1]),
            job_item("RUNNING", remote_jobs=REFS[:1]),
            job_item("INGESTING", remote_jobs=REFS[:1], chunks=1),
            job_item("COMPLETED", indexed=297, dead_lettered=3),
        ]
    )
    lines: list[str] = []
    sleeps: list[float] = []
    # When it is watched
    final = watch_job(source, JOB, PlainRenderer(emit=lines.append), interval=2, sleep=sleeps.append)  # type: ignore[arg-type]
    # Then each change is one line, the unchanged look prints nothing, and the last snapshot is returned
    assert [line.split()[1] for line in lines] == ["CREATED", "RUNNING", "INGESTING", "COMPLETED"]
    assert lines[-1].startswith(f"{JOB} COMPLETED prepared=297/300 embedded=297/300 indexed=297/300")
    assert final.state == "COMPLETED" and sleeps == [2, 2, 2, 2]


def test_json_lines_carry_every_number() -> None:
    lines: list[str] = []
    renderer = JsonRenderer(emit=lines.append)
    renderer.show(
        snapshot(job_item("RUNNING", remote_jobs=REFS[:1]), remote_counts={"osb-docs-000": RemoteCounts(5)})
    )
    [line] = lines
    data = json.loads(line)
    assert data["type"] == "progress" and data["state"] == "RUNNING" and data["embedded"] == 5
    assert data["remotes"][0]["processed"] == 5


def test_rich_bars_show_phases_and_remote_counts() -> None:
    from rich.console import Console

    # Given a terminal-like console and a running Bedrock job
    console = Console(record=True, width=160, force_terminal=False)
    renderer = RichRenderer(console=console)
    progress = snapshot(
        job_item("RUNNING", remote_jobs=REFS[:1]),
        records_per_remote={"osb-docs-000": 297},
        remote_counts={"osb-docs-000": RemoteCounts(99)},
    )
    # When the snapshot is shown
    renderer.show(progress)
    renderer.close()
    text = console.export_text()
    # Then the phases and the remote job's own count are on screen
    assert "embedded" in text and "99/300" in text
    assert "osb-docs-000" in text and "99/297" in text and "by the service" in text


def test_a_service_without_counts_shows_its_elapsed_time_against_the_plans_estimate() -> None:
    from rich.console import Console

    # Given a SageMaker job running for 60 s (no counts from the service) whose plan estimated 600 s
    console = Console(record=True, width=200, force_terminal=False)
    renderer = RichRenderer(console=console)
    job = job_item("RUNNING", remote_jobs=REFS[:1], estimate=json.dumps({"wall_seconds": 600}))
    progress = snapshot(job)  # created 10:00:00, seen at NOW, 10:01:00
    # When the snapshot is shown
    renderer.show(progress)
    renderer.close()
    # Then the remote job's bar gives the elapsed time against the estimate
    assert (progress.elapsed_seconds, progress.estimated_seconds) == (60, 600)
    assert "60 s of ~600 s estimated" in console.export_text()


class BedrockStub:
    """GetModelInvocationJob's answer, with the record counts it reports while a job runs."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def get_model_invocation_job(self, jobIdentifier: str) -> dict[str, Any]:
        return {"jobArn": jobIdentifier, "status": "InProgress", **self.answer}


def test_bedrocks_record_counts_are_read_through_the_backend() -> None:
    settings = BedrockJobConfig(model_id="amazon.titan-embed-text-v2:0", family="titan-embed-text-v2")
    stub = BedrockStub({"processedRecordCount": 40, "errorRecordCount": 1, "totalRecordCount": 150})
    counter = RemoteCounter(
        lambda: BedrockBackend(
            settings, cast(Any, stub), cast(Any, None), {}, role_arn="arn:aws:iam::1:role/r"
        )
    )
    assert counter.counts(REFS[:1]) == {"osb-docs-000": RemoteCounts(40, 1, 150)}
    stub.answer = {}  # an answer without counts (a job not started yet) shows none
    assert counter.counts(REFS[:1]) == {}


def test_osbatch_watch_follows_a_job_in_the_table(
    cli_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a finished job in the table, with its parts list in the output bucket
    jobs = cli_target.jobs
    jobs.create(JOB, "msmarco", SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl"))
    jobs.update(JOB, None, records_in=3, valid=3, dead_lettered=0)
    jobs.update(JOB, JobStateName.FAILED, remote_jobs=REFS[:1], reason="the model failed")
    cli_target.client("s3").put_object(
        Bucket="osb-out", Key=job_parts_key(JOB), Body=json.dumps([{"job": 0, "records": 3}]).encode()
    )
    # When it is watched as JSON lines
    code = main(["watch", JOB, "--json"])
    # Then one line shows its end, and the exit code is the failed job's
    [line] = capsys.readouterr().out.splitlines()
    data = json.loads(line)
    assert (data["state"], data["records_in"], data["remotes"][0]["records"]) == ("FAILED", 3, 3)
    assert code == ExitCode.FAILED


def test_progress_source_reads_the_table_and_the_parts_list(cli_target: Any) -> None:
    jobs = cli_target.jobs
    jobs.create(JOB, "msmarco", SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl"))
    jobs.update(JOB, JobStateName.INGESTING, records_in=3, valid=3, remote_jobs=REFS[:1], chunks=1)
    jobs.save_checkpoint(JOB, 0, Checkpoint(offset=10, lines=2, indexed=2))
    s3 = cli_target.client("s3")
    s3.put_object(
        Bucket="osb-out", Key=job_parts_key(JOB), Body=json.dumps([{"job": 0, "records": 3}]).encode()
    )
    progress = ProgressSource(jobs, s3, "osb-out").snapshot(JOB)
    assert progress is not None
    assert (progress.indexed, progress.remotes[0].records, progress.chunks_done) == (2, 3, 0)
