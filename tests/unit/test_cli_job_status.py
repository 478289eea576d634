"""`osbatch status <job>`: a readable summary at a terminal and in pipes, the raw item with --json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.job_status import plain_text, print_rich, summarize

DEAD_LETTERS = "s3://osb-dlq/dead-letter/docs-0123456789abcdef/"
REPORT = "s3://osb-out/reports/docs-0123456789abcdef.json"


def running_job(**fields: Any) -> dict[str, Any]:
    return {
        "job_id": "docs-0123456789abcdef",
        "item": "job",
        "pipeline": "docs",
        "state": "RUNNING",
        "source": "s3://osb-in/docs/a.jsonl",
        "records_in": 120,
        "dead_lettered": 2,
        "remote_jobs": [
            {
                "id": "osb-docs-0",
                "arn": "arn:aws:sagemaker:us-east-1:1:transform-job/osb-docs-0",
                "output_uri": "s3://osb-out/jobs/docs/output/0/",
            },
            {"id": "osb-docs-1", "arn": "", "output_uri": "s3://osb-out/jobs/docs/output/1/"},
        ],
        "remote_jobs_done": 1,
        "remote_status": "InProgress",
        "polls": 3,
        "created_at": "2026-12-06T10:00:00Z",
        "submitted_at": "2026-12-06T10:00:42Z",
        **fields,
    }


def test_the_summary_hides_the_task_token_and_keeps_every_other_field() -> None:
    # Given a job item while its workflow waits, with a finish recorded for the next wait
    job = running_job(
        wake_token="AQCEAAAAKgAAAAMAAAAAAAAAAe1p0X2ZjY2U2NzM0", wake_pending={"osb-docs-0123456789abcdef"}
    )
    # When it is shown as plain text
    text = plain_text(summarize(job, dead_letters=DEAD_LETTERS, report=REPORT))
    # Then the token is not printed, and the fields no section names are still listed
    assert "wake_token" not in text and "AQCEAAAA" not in text
    assert "wake_pending" in text and "RUNNING" in text


def test_remote_jobs_are_a_table_not_a_python_repr() -> None:
    # Given a running job with two remote inference jobs
    text = plain_text(summarize(running_job(), dead_letters=DEAD_LETTERS, report=REPORT))
    # Then each remote job is one row under the table's headers, with its progress in the heading
    lines = text.splitlines()
    heading = lines.index("remote jobs (1/2 done, last status InProgress, 3 polls)")
    assert lines[heading + 1].split() == ["#", "REMOTE", "JOB", "OUTPUT"]
    assert lines[heading + 2].split() == [
        "1",
        "arn:aws:sagemaker:us-east-1:1:transform-job/osb-docs-0",
        "s3://osb-out/jobs/docs/output/0/",
    ]
    assert lines[heading + 3].split() == ["2", "osb-docs-1", "s3://osb-out/jobs/docs/output/1/"]
    assert "{'id'" not in text and "[{" not in text


def test_counts_timeline_and_places_are_their_own_sections() -> None:
    # Given a finished job with its report written
    job = running_job(
        state="COMPLETED", indexed=118, finished_at="2026-12-06T11:02:03Z", report=REPORT, chunks=4
    )
    # When it is summarized
    text = plain_text(summarize(job, dead_letters=DEAD_LETTERS, report="unused"))
    # Then the counts, the timeline with elapsed times, and both places are there
    assert "  records in     120" in text and "  indexed        118" in text and "  dead-lettered  2" in text
    assert "  submitted      2026-12-06T10:00:42Z  +0m42s" in text
    assert "  finished       2026-12-06T11:02:03Z  +1h02m03s" in text
    assert f"  dead letters  {DEAD_LETTERS}" in text
    assert f"  report        {REPORT}" in text


def test_before_the_job_ends_the_report_place_says_when_it_is_written() -> None:
    # Given a job that has not ended / When it is summarized
    summary = summarize(running_job(), dead_letters=DEAD_LETTERS, report=REPORT)
    # Then the report's place is the one the job will write, marked as not there yet
    assert ("report", f"{REPORT} (written when the job ends)") in summary.places


def test_at_a_terminal_rich_draws_the_same_sections(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a running job / When rich renders it
    print_rich(summarize(running_job(), dead_letters=DEAD_LETTERS, report=REPORT))
    out = capsys.readouterr().out
    # Then its table holds the remote jobs and the places are named
    assert "REMOTE JOB" in out and "osb-docs-1" in out
    assert "dead letters" in out and "counts" in out and "timeline" in out


def test_json_is_the_item_without_its_internal_fields() -> None:
    from decimal import Decimal

    from cli.output import public, to_json

    # Given an item as DynamoDB returns it (Decimals, nested too) with the workflow's token
    job = running_job(wake_token="AQCE", records_in=Decimal("120"), rate=Decimal("1.5"))
    # When it is printed as JSON
    data = json.loads(to_json(public(job)))
    # Then numbers are numbers, the token is gone, and remote_jobs is a list of objects
    assert data["records_in"] == 120 and data["rate"] == 1.5
    assert "wake_token" not in data and "item" not in data
    assert data["remote_jobs"][1]["id"] == "osb-docs-1"
