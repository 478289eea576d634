"""`osbatch jobs` filters and --json, `status --json`, and the exit codes the CLI documents."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cli.exit_codes import ExitCode, exit_codes_help
from cli.job_filters import FilterError, parse_since, select_jobs
from cli.main import build_parser, main
from cli.target import TargetError
from osbatch.dal import JobTable
from osbatch.models import JobStateName, SourceObject
from tests.unit.helpers import REPO


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def add_job(jobs: JobTable, job_id: str, pipeline: str, state: JobStateName, age: timedelta) -> None:
    """A job created `age` ago (the table's clock), then moved to `state`."""
    created = iso(datetime.now(UTC) - age)
    table = JobTable(jobs._table, clock=lambda: created)
    table.create(job_id, pipeline, SourceObject(bucket="osb-in", key=f"{pipeline}/{job_id}.jsonl"))
    if state is not JobStateName.CREATED:
        table.update(job_id, state, records_in=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1.5H", timedelta(hours=1.5)),
    ],
)
def test_since_reads_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    # Given a duration as typed / When it is parsed / Then it is that long
    assert parse_since(text) == expected


def test_since_without_a_unit_is_a_usage_error(capsys: pytest.CaptureFixture[str], cli_target: Any) -> None:
    # Given `--since 60` (no unit) / When `osbatch jobs` runs
    code = main(["jobs", "--since", "60"])
    # Then it exits with the usage code and shows the accepted form
    assert code == ExitCode.USAGE
    assert "give a number and a unit, e.g. 90s, 30m, 1h" in capsys.readouterr().err
    with pytest.raises(FilterError):
        parse_since("soon")


def test_select_keeps_the_order_and_applies_the_limit_after_the_filters() -> None:
    # Given three jobs, newest first, two of them FAILED
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    listed = [
        {"job_id": "c", "state": "COMPLETED", "created_at": "2026-12-06T11:59:00Z"},
        {"job_id": "b", "state": "FAILED", "created_at": "2026-12-06T11:30:00Z"},
        {"job_id": "a", "state": "FAILED", "created_at": "2026-12-06T09:00:00Z"},
    ]
    # When filtered by state, by age, and by both with a limit
    failed = select_jobs(listed, state="FAILED", now=now)
    recent = select_jobs(listed, since=timedelta(hours=1), now=now)
    one = select_jobs(listed, state="FAILED", limit=1, now=now)
    # Then each keeps exactly the matching jobs in their order
    assert [job["job_id"] for job in failed] == ["b", "a"]
    assert [job["job_id"] for job in recent] == ["c", "b"]
    assert [job["job_id"] for job in one] == ["b"]


def test_jobs_filters_by_state_pipeline_and_age_as_json(
    jobs: JobTable, cli_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given jobs of two pipelines, failed and completed, recent and old
    add_job(jobs, "docs-recent-failed", "docs", JobStateName.FAILED, timedelta(minutes=10))
    add_job(jobs, "docs-old-failed", "docs", JobStateName.FAILED, timedelta(hours=3))
    add_job(jobs, "docs-recent-done", "docs", JobStateName.COMPLETED, timedelta(minutes=5))
    add_job(jobs, "faq-recent-failed", "faq", JobStateName.FAILED, timedelta(minutes=2))
    # When `osbatch jobs --state failed --pipeline docs --since 1h --json` runs
    code = main(["jobs", "--state", "failed", "--pipeline", "docs", "--since", "1h", "--json"])
    # Then it prints one JSON array holding only the recent failed docs job, with its fields
    listed = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert [job["job_id"] for job in listed] == ["docs-recent-failed"]
    assert listed[0]["state"] == "FAILED" and listed[0]["records_in"] == 3
    assert "item" not in listed[0]
    # And a filter nothing matches says so, rather than that there are no jobs at all
    assert main(["jobs", "--state", "CANCELLED"]) == ExitCode.OK
    assert capsys.readouterr().out == "no jobs match those filters\n"


def test_an_unknown_state_is_a_usage_error_naming_the_states(
    cli_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a misspelled state / When jobs are listed with it
    code = main(["jobs", "--state", "FAIL"])
    # Then the usage code, and the error lists the states
    assert code == ExitCode.USAGE
    assert "not a job state; one of CREATED, RUNNING" in capsys.readouterr().err


def test_status_of_a_failed_job_exits_with_the_failed_code_and_prints_json(
    jobs: JobTable, cli_target: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a failed job and a completed one
    add_job(jobs, "docs-failed", "docs", JobStateName.FAILED, timedelta(minutes=1))
    add_job(jobs, "docs-done", "docs", JobStateName.COMPLETED, timedelta(minutes=1))
    # When `osbatch status <job> --json` runs for each
    failed = main(["status", "docs-failed", "--json"])
    failed_out = json.loads(capsys.readouterr().out)
    done = main(["status", "docs-done"])
    done_out = capsys.readouterr().out
    # Then the failed job exits FAILED with its item as JSON; the completed one exits OK with a summary
    assert failed == ExitCode.FAILED and failed_out["job_id"] == "docs-failed"
    assert done == ExitCode.OK
    assert "job docs-done" in done_out and "s3://osb-dlq/dead-letter/docs-done/" in done_out


def test_an_unreachable_target_has_its_own_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given neither a local stack nor an AWS one
    def nothing() -> Any:
        raise TargetError("no local runtime is up and no AWS region is configured")

    monkeypatch.setattr("cli.target.resolve_target", nothing)
    # When a command needs the stack
    code = main(["jobs"])
    # Then it exits UNREACHABLE, distinct from a usage error
    assert code == ExitCode.UNREACHABLE != ExitCode.USAGE
    assert "no AWS region is configured" in capsys.readouterr().err


def test_help_and_readme_document_every_exit_code() -> None:
    # Given the exit codes / When `osbatch --help` is formatted
    text = build_parser().format_help()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    # Then it and README.md list each code with its meaning
    assert exit_codes_help() in text
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"README.md does not document exit code {int(code)}"


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    # Given a command that prints far more than the reader takes (as `osbatch jobs | head -1`)
    script = (
        "import sys, cli.commands as c\n"
        "c.jobs = lambda args: [print('x' * 100) for _ in range(200000)] and 0\n"
        "from cli.main import main\n"
        "sys.exit(main(['jobs']))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    assert process.stdout is not None and process.stderr is not None
    # When the reader takes one line and closes the pipe
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    # Then the CLI stops without a traceback or "Exception ignored", and exits OK
    assert process.wait() == ExitCode.OK
    assert err == ""


def test_credentials_aws_refuses_count_as_unreachable() -> None:
    from botocore.exceptions import ClientError

    from cli.commands import exit_code_for

    # Given AWS answering with an expired token, and with a throttle
    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "DescribeStacks")
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "Scan")
    # When the CLI maps them to exit codes
    # Then the refused credentials are UNREACHABLE; anything else stays a traceback (None), not a guess
    assert exit_code_for(expired) == ExitCode.UNREACHABLE
    assert exit_code_for(throttled) is None


def test_setup_json_is_the_changes_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from osbatch.search.provision import Change, Provisioned

    # Given a setup that notes something along the way and changes one thing
    def provision(config: Any, role_arn: Any, notes: Any) -> Provisioned:
        notes("note: the local node has no k-NN on this field")
        return Provisioned(
            changes=[Change("index", config.sink.index, "created"), Change("model", "m", "unchanged")]
        )

    monkeypatch.setattr("cli.commands._provision", provision)
    # When `osbatch setup --json` runs
    code = main(["setup", "--pipeline", "python-docs", "--json"])
    captured = capsys.readouterr()
    # Then stdout is one JSON document of the changes, and the note went to stderr
    result = json.loads(captured.out)
    assert code == ExitCode.OK and result["pipeline"] == "python-docs" and result["changed"] is True
    assert [change["action"] for change in result["changes"]] == ["created", "unchanged"]
    assert "note: the local node" in captured.err
