"""`osbatch report <job> --html`: a self-contained page, checked as headless Chromium renders it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cli.exit_codes import ExitCode
from cli.main import main
from cli.report_data import DeadLetterGroup, ReportData, Span, group_dead_letters, state_spans
from cli.report_page import render
from osbatch.contracts import dead_letter_key, job_parts_key, report_key
from osbatch.dal import JobTable
from osbatch.dal.chunks import ChunkCounts
from osbatch.models import JobStateName, SourceObject
from tests.helpers import render_in_chromium

JOB = "docs-0123456789abcdef"


def report_data() -> ReportData:
    job = {
        "job_id": JOB,
        "pipeline": "docs",
        "state": "PARTIALLY_COMPLETED",
        "records_in": 1000,
        "valid": 990,
        "indexed": 900,
        "dead_lettered": 100,
        "created_at": "2026-12-06T10:00:00Z",
        # what Prepare estimated and what the job came to, as JSON text on the job item
        "estimate": json.dumps(
            {"sent_to_model": 990, "input_tokens": 51000, "remote_jobs": 1, "usd": 0.0123}
        ),
        "actual": json.dumps({"sent_to_model": 990, "remote_jobs": 1, "wall_seconds": 44}),
    }
    return ReportData(
        job=job,
        report={"records_in": 1000, "indexed": 900, "dead_lettered": 100, "unaccounted": 0},
        dead_letters=[
            DeadLetterGroup(
                "index", "mapper_parsing_exception: vector dimension 383 != 384", 90, ['line 7: {"_id": "a"}']
            ),
            DeadLetterGroup("parse", "not JSON: Expecting value", 10, ["offset 512: {oops"]),
        ],
        spans=[
            Span("queue wait", 0, 2),
            Span("StartJob", 2, 3),
            Span("WaitForJob", 3, 40),
        ],
        chunks=[(41.0, 400), (43.0, 500)],
        remotes=[
            {
                "id": "osb-docs-000",
                "arn": "arn:aws:sagemaker:us-east-1:1:transform-job/osb-docs-000",
                "records": 990,
            }
        ],
    )


def _bars(dom: str, css_class: str) -> dict[str, tuple[float, int]]:
    """label -> (data-value, data-px measured by the page after layout)."""
    found = {}
    for tag in re.findall(rf'<rect class="{css_class}"[^>]*>', dom):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        found[attributes["data-label"]] = (float(attributes["data-value"]), int(attributes["data-px"]))
    return found


def test_the_page_renders_its_charts_in_chromium(tmp_path: Path) -> None:
    # Given a job's report page written to a file
    page = tmp_path / "report.html"
    page.write_text(render(report_data()), encoding="utf-8")
    # When headless Chromium opens it, with no network to load anything from
    rendered = render_in_chromium(page, tmp_path / "report.png")
    dom = rendered.dom
    # Then the page's script ran after layout, and every funnel bar was drawn to scale
    assert 'data-rendered="yes"' in dom
    funnel = _bars(dom, "bar")
    assert funnel["records in"][0] == 1000 and funnel["indexed"][0] == 900
    assert funnel["dead-lettered: index"][0] == 90 and funnel["dead-lettered: parse"][0] == 10
    widest = funnel["records in"][1]
    assert widest > 100
    assert abs(funnel["indexed"][1] - 0.9 * widest) <= 2
    # And the timeline has a bar per state, WaitForJob the longest
    spans = _bars(dom, "span")
    assert set(spans) == {"queue wait", "StartJob", "WaitForJob"}
    assert spans["WaitForJob"][1] > spans["StartJob"][1] > 0
    # And the throughput line, the dead-letter reasons with sample lines and the remote job are on the page
    assert "900 records indexed by 2 chunk(s)" in dom
    assert "mapper_parsing_exception: vector dimension 383 != 384" in dom and "offset 512: {oops" in dom
    assert "osb-docs-000" in dom
    # And the plan's estimate stands beside the actual
    versus = re.search(r'<table id="estimate-and-actual">.*?</table>', dom, re.S)
    assert versus is not None
    assert "51,000" in versus.group(0) and "0.0123" in versus.group(0) and "44" in versus.group(0)
    # And nothing was to be fetched from elsewhere: no http(s) source or stylesheet in the page
    assert not re.search(r'(src|href)="https?:', page.read_text())
    assert rendered.screenshot.stat().st_size > 10_000


def test_dead_letters_group_by_stage_and_reason_with_samples() -> None:
    entries = [{"stage": "index", "reason": "too long", "line": n, "record": {"_id": n}} for n in range(5)]
    entries.append({"stage": "parse", "reason": "not JSON", "line": None, "offset": 9, "record": "{x"})
    groups = group_dead_letters(entries)
    assert [(g.stage, g.reason, g.count) for g in groups] == [
        ("index", "too long", 5),
        ("parse", "not JSON", 1),
    ]
    assert groups[0].samples == ['line 0: {"_id": 0}', 'line 1: {"_id": 1}', 'line 2: {"_id": 2}']
    assert groups[1].samples == ["offset 9: {x"]


def test_state_spans_come_from_the_execution_history() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)

    def at(second: int) -> datetime:
        return start.replace(second=second)

    events = [
        {"timestamp": at(1), "stateEnteredEventDetails": {"name": "Prepare"}},
        {"timestamp": at(3), "stateExitedEventDetails": {"name": "Prepare"}},
        {"timestamp": at(3), "stateEnteredEventDetails": {"name": "PollJob"}},
        {"timestamp": at(4), "stateExitedEventDetails": {"name": "PollJob"}},
        {"timestamp": at(9), "stateEnteredEventDetails": {"name": "PollJob"}},
        {"timestamp": at(10), "stateExitedEventDetails": {"name": "PollJob"}},
    ]
    assert state_spans(events, start) == [
        Span("Prepare", 1, 3),
        Span("PollJob", 3, 4),
        Span("PollJob", 9, 10),
    ]


def test_osbatch_report_html_gathers_the_job_from_the_stack(
    cli_target: Any, tmp_path: Path, capsys: Any
) -> None:
    # Given a finished job with a report, dead letters, a parts list and two chunk items
    jobs: JobTable = cli_target.jobs
    s3 = cli_target.client("s3")
    jobs.create(JOB, "msmarco", SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl"))
    jobs.update(JOB, JobStateName.PARTIALLY_COMPLETED, records_in=4, valid=4, indexed=3, dead_lettered=1)
    jobs.update(JOB, None, remote_jobs=[{"id": "osb-m-000", "arn": "", "output_uri": "s3://osb-out/o/"}])
    jobs.put_chunk(JOB, 0, ChunkCounts(2, 2, 0))
    jobs.put_chunk(JOB, 1, ChunkCounts(2, 1, 1))
    s3.put_object(
        Bucket="osb-out", Key=report_key(JOB), Body=json.dumps({"records_in": 4, "indexed": 3}).encode()
    )
    s3.put_object(
        Bucket="osb-out", Key=job_parts_key(JOB), Body=json.dumps([{"job": 0, "records": 4}]).encode()
    )
    letter = {"stage": "index", "reason": "mapper_parsing_exception", "line": 3, "record": {"_id": "d"}}
    s3.put_object(
        Bucket="osb-dlq", Key=dead_letter_key(JOB, "ingest/", 1), Body=json.dumps(letter).encode() + b"\n"
    )
    page = tmp_path / "job.html"
    # When the page is written, and the data printed as JSON
    assert main(["report", JOB, "--html", str(page)]) == ExitCode.OK
    assert main(["report", JOB, "--json"]) == ExitCode.OK
    # Then the page holds the job's figures and dead-letter reason, and the JSON its gathered data
    text = page.read_text()
    assert 'data-label="indexed" data-value="3"' in text and "mapper_parsing_exception" in text
    assert "3 records indexed by 2 chunk(s)" in text
    printed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert printed["dead_letters"] == [
        {
            "stage": "index",
            "reason": "mapper_parsing_exception",
            "count": 1,
            "samples": ['line 3: {"_id": "d"}'],
        }
    ]
    assert printed["remotes"] == [{"id": "osb-m-000", "arn": "", "records": 4}]
