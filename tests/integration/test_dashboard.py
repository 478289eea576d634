"""The stack's CloudWatch dashboard, looked at locally after a job: every widget shows what it charts.

The functions' EMF metrics and the Lambda, SQS and Step Functions metrics reach the emulator's
CloudWatch (local/aws/metrics.py); `osbatch dashboard` renders the deployed dashboard from them, and
headless Chromium shows the page. A widget whose metric name or dimensions do not match what is emitted
stays empty, and fails this test. No widget is excused: the stack charts no IteratorAge (no stream
sources), and fail-job's section charts JobsFailed, which Finalize publishes as 0 (infra/monitoring.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from tests.helpers import dashboard_widgets, eventually, render_in_chromium
from tests.integration.helpers import TOPICS, upload, wait_for_end

pytestmark = pytest.mark.integration

PIPELINE = "e2e"


def test_every_widget_shows_data_after_a_job(
    stack: Any, jobs: JobTable, config: PipelineConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a demo-sized job run to its end
    body = b"".join(json.dumps({"_id": f"dash-{t}", "text": text}).encode() + b"\n" for t, text in TOPICS)
    job = wait_for_end(jobs, upload(stack, config, f"dashboard-{time.time_ns()}.jsonl", body))
    assert job["state"] == "COMPLETED"
    page = tmp_path / "dashboard.html"

    # When the dashboard is rendered once the services' sampled metrics have caught up
    def rendered_without_gaps() -> list[dict[str, str]] | None:
        main(["dashboard", "--html", str(page)])
        capsys.readouterr()
        widgets = dashboard_widgets(page.read_text())
        return None if [w for w in widgets if w["data-has-data"] == "no"] else widgets

    try:
        eventually(rendered_without_gaps, timeout=60, interval=5, what="every widget with data")
    except AssertionError:
        code = main(["dashboard"])
        pytest.fail(f"widgets without data (exit {code}):\n{capsys.readouterr().out}")
    shown = render_in_chromium(page, tmp_path / "dashboard.png", height=6000)

    # Then Chromium shows every widget the page has, and every one has data: none charts a metric the
    # functions and services do not emit under that name and those dimensions (the unit tests of
    # cli/dashboard.py and cli/dashboard_page.py show such a widget marked data-has-data="no")
    widgets = dashboard_widgets(shown.dom)
    assert len(widgets) > 50
    assert [w for w in widgets if w["data-has-data"] != "yes"] == []
    # And among them the job's own metrics, the submit queue, the workflow and each function it ran
    with_data = {w["data-section"].split("](")[0] for w in widgets if w["data-has-data"] == "yes"}
    assert any("Jobs" in section for section in with_data)
    for part in (
        "[Submit queue",
        "[Job workflow",
        "[submit function",
        "[ingest-chunk function",
        "[finalize function",
        "fail-job function",  # its failed-jobs graph: 0 from Finalize after a success
    ):
        assert any(part in section for section in with_data), part
