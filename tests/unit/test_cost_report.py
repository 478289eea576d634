"""What a run cost, in its report: the plan's estimate recorded by Prepare, the actuals by Finalize and
FailJob, shown side by side by `osbatch status`; and conservation with unchanged records, every ending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.job_status import plain_text, summarize
from cli.main import main
from osbatch.backends.openai import OpenAIBackend
from osbatch.config import PipelineConfig
from osbatch.dal import ChunkCounts, JobTable
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus, Prepared, RemoteJob
from osbatch.steps.fail_job import fail_job
from osbatch.steps.finalize import finalize_job
from osbatch.steps.support.actuals import BEDROCK_TOKENS, OPENAI_TOKENS, reported_input_tokens
from tests.unit.helpers import JOB, REPO, SOURCE, job_store, run_prepare

REMOTE = RemoteJob(id="osb-msmarco-1", arn="arn:job", output_uri="s3://osb-out/jobs/msmarco-1/output/")


def with_unchanged(state: JobStateName, *, planned: bool) -> JobState:
    """10 records: 1 bad line, 4 unchanged (vectors kept), 5 sent to the model."""
    prepared = Prepared(
        input_uri="s3://osb-out/jobs/msmarco-1/input/",
        parts=1,
        records_in=10,
        valid=5,
        dead_lettered=1,
        unchanged=4,
    )
    return JobState(
        job_id=JOB,
        pipeline="msmarco",
        source=SOURCE,
        prepared=prepared,
        remotes=[REMOTE.model_copy(update={"state": state, "records": 5, "ingested": planned})],
        status=JobStatus(state=state, reason=f"the job is {state.value}"),
        plan=IngestPlan(bucket="osb-out", key="jobs/msmarco-1/plans/00000.json", chunks=1, objects=1)
        if planned
        else None,
    )


@pytest.fixture
def job(jobs: JobTable) -> JobTable:
    jobs.create(JOB, "msmarco", SOURCE)
    return jobs


def test_a_completed_job_counts_unchanged_records_and_records_its_actuals(job: JobTable, s3: Any) -> None:
    # Given a job whose one chunk indexed the 5 records sent to the model
    job.put_chunk(JOB, 0, ChunkCounts(5, 5, 0))
    # When it is finalized
    _, report = finalize_job(
        with_unchanged(JobStateName.COMPLETED, planned=True), store=job_store(job, s3), publish=lambda _: None
    )
    # Then records_in = indexed + unchanged + dead_lettered, with nothing unaccounted
    assert (report.records_in, report.indexed, report.unchanged, report.dead_lettered) == (10, 5, 4, 1)
    assert report.unaccounted == 0 and report.state == "COMPLETED"
    # And the actuals are recorded, on the report and on the job item for osbatch status
    assert report.actual["sent_to_model"] == 5 and report.actual["remote_jobs"] == 1
    assert report.actual["wall_seconds"] is not None and report.actual["wall_seconds"] >= 0
    assert report.actual["input_tokens"] is None  # SageMaker reports none, and says so
    assert "reports no token counts" in report.actual["input_tokens_from"]
    assert json.loads(job.get(JOB)["actual"])["indexed"] == 5  # type: ignore[index]


@pytest.mark.parametrize("ending", ["FAILED", "EXPIRED", "UNREACHABLE", "CANCELLED"])
def test_a_job_that_fails_before_ingest_conserves_its_unchanged_records(
    job: JobTable, s3: Any, ending: str
) -> None:
    # Given a job with unchanged records whose remote job ended without output
    state = with_unchanged(JobStateName(ending), planned=False)
    # When it is failed
    _, report = fail_job(state, store=job_store(job, s3), backend=None, publish=lambda _: None)
    # Then the file-level letter stands for the 5 sent, not for the 4 kept: 10 = 0 + 4 + 6
    assert (report.indexed, report.unchanged, report.dead_lettered, report.unaccounted) == (0, 4, 6, 0)
    assert report.actual["records_in"] == 10


def test_prepare_records_the_plans_estimate(config: PipelineConfig, s3: Any, jobs: JobTable) -> None:
    # Given three records / When they are prepared
    body = b"".join(json.dumps({"_id": str(n), "text": "x" * 40}).encode() + b"\n" for n in range(3))
    state, _ = run_prepare(config, s3, jobs, body)
    # Then the job carries the plan's figures for what Prepare sends, with the price's date
    estimate = state.prepared.estimate
    assert (estimate["sent_to_model"], estimate["input_tokens"], estimate["remote_jobs"]) == (3, 30, 1)
    assert estimate["usd"] is not None and estimate["prices_of"]
    assert estimate["wall_seconds"] == pytest.approx(
        estimate["queue_seconds"] + estimate["inference_seconds"] + estimate["ingest_seconds"], abs=0.2
    )
    assert json.loads(jobs.get(JOB)["estimate"]) == estimate  # type: ignore[index]


def test_openai_usage_is_summed_and_bedrock_reads_its_manifest(s3: Any) -> None:
    # Given OpenAI output lines with usage (their documented shape)
    line = {
        "custom_id": "line-7",
        "response": {
            "status_code": 200,
            "body": {"data": [], "usage": {"prompt_tokens": 12, "total_tokens": 12}},
        },
    }
    parsed = OpenAIBackend.parse_output(None, line)  # type: ignore[arg-type]
    # Then the tokens are read from usage.prompt_tokens
    assert parsed.input_tokens == 12
    # And a plan that summed them is what the actuals report
    state = with_unchanged(JobStateName.COMPLETED, planned=True)
    state.plan.input_tokens = 36  # type: ignore[union-attr]
    assert reported_input_tokens(state, None) == (36, OPENAI_TOKENS)
    # And Bedrock's come from each job's manifest.json.out inputTokenCount
    from osbatch.backends.bedrock import BedrockBackend

    class Manifests(BedrockBackend):
        def __init__(self) -> None:
            pass

        def manifest(self, remote: RemoteJob) -> dict[str, Any]:
            return {"inputTokenCount": 100, "totalRecordCount": 5}

    bedrock_state = with_unchanged(JobStateName.COMPLETED, planned=False)
    assert reported_input_tokens(bedrock_state, Manifests()) == (100, BEDROCK_TOKENS)


def test_status_shows_estimate_and_actual_side_by_side() -> None:
    # Given a finished job item with both
    estimate = {
        "sent_to_model": 5,
        "input_tokens": 50,
        "remote_jobs": 1,
        "wall_seconds": 430.0,
        "usd": 0.0002,
        "prices_of": "2026-12-06",
    }
    actual = {
        "sent_to_model": 5,
        "input_tokens": None,
        "input_tokens_from": "the service reports no token counts",
        "remote_jobs": 1,
        "wall_seconds": 95.0,
    }
    item = {
        "job_id": JOB,
        "state": "COMPLETED",
        "estimate": json.dumps(estimate),
        "actual": json.dumps(actual),
    }
    # When it is summarized as text
    text = plain_text(summarize(item, dead_letters="s3://d/", report="s3://r/"))
    # Then one section sets them beside each other, row by row
    section = text.split("estimate against actual\n", 1)[1]
    assert "wall time" in section and "7m10s" in section and "1m35s" in section
    assert "0.0002 (prices of 2026-12-06)" in section
    assert "- (the service reports no token counts)" in section
    assert "estimate" not in [label for label, _ in summarize(item, dead_letters="", report="").more]


def test_submit_dry_run_prints_the_plan_and_uploads_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the demo sample / When it is submitted with --dry-run (no target is up, none is needed)
    sample = REPO / "samples" / "python-docs" / "part-1.jsonl"
    code = main(["submit", str(sample), "--pipeline", "python-docs", "--dry-run", "--json"])
    # Then the plan is printed, as `osbatch plan` prints it
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (plan["records"], plan["valid"]) == (1323, 1320)
    assert plan["incremental"]["enabled"] is True


def test_submit_dry_run_still_refuses_what_the_trigger_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file with the wrong suffix / When it is dry-run / Then it is refused as a real submit would
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n")
    assert main(["submit", str(csv), "--pipeline", "python-docs", "--dry-run"]) == 2
    assert "the trigger would ignore it" in capsys.readouterr().err


def test_a_demo_run_over_an_index_it_already_filled_still_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.demo import Upload
    from cli.demo import summarize as demo_summary

    # Given the demo's two files, whose records an earlier run had already indexed unchanged
    jobs = {
        "a": {"state": "COMPLETED", "records_in": 1323, "indexed": 0, "unchanged": 1320, "dead_lettered": 3},
        "b": {"state": "COMPLETED", "records_in": 1322, "indexed": 0, "unchanged": 1320, "dead_lettered": 2},
    }
    # When the demo sums them up
    ok = demo_summary(jobs, [Upload("part-1.jsonl", "a"), Upload("part-2.jsonl", "b")], wall=1.0)
    # Then the unchanged records count, and the sums hold
    out = capsys.readouterr().out
    assert ok
    assert (
        "UNCHANGED" in out
        and "indexed + unchanged = records_in - dead_lettered: 0 + 2640 = 2645 - 5 holds" in out
    )


def test_a_failed_job_still_reports_the_stale_documents_prepare_found(job: JobTable, s3: Any) -> None:
    # Given a job whose Prepare found 3 documents of the source's earlier version gone from this one
    state = with_unchanged(JobStateName.FAILED, planned=False)
    state.prepared.incremental = {"stale": 3}  # type: ignore[union-attr]
    # When it fails / Then they are reported as stale, not deleted
    _, report = fail_job(state, store=job_store(job, s3), backend=None, publish=lambda _: None)
    assert (report.stale, report.deleted) == (3, 0)


def test_search_hits_leave_out_osbatchs_own_fields() -> None:
    from cli.commands import _pipeline
    from cli.search import hits_of
    from osbatch.contracts import DOC_FIELDS

    config = _pipeline(str(REPO / "pipelines" / "*.yaml"), "python-docs")

    # Given a hit whose document carries osbatch's bookkeeping beside a field of its own
    source = {"chunk": "text", "tag": "v2", **dict.fromkeys(DOC_FIELDS, "x")}
    (hit,) = hits_of({"hits": {"hits": [{"_id": "d1", "_score": 1.0, "_source": source}]}}, config)
    # Then only the document's own fields are shown
    assert hit.extra == {"tag": "v2"}
