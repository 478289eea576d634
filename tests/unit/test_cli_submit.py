"""`osbatch submit`: no upload is silently ignored.

It refuses a file the trigger would ignore, waits for each upload's job, and when none appears names the
hop it finds broken (bucket notifications, the pipeline's EventBridge rule, the submit queues).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from cli.exit_codes import ExitCode
from cli.main import main
from cli.submit import BACKLOG, TriggerCheck, ignored_because, rule_matches, wait_for_job
from infra.trigger import key_wildcard
from local.aws.patches import s3_notifications
from osbatch.config import parse_pipeline
from osbatch.dal import JobTable
from osbatch.models import SourceObject
from tests.unit.helpers import pipeline_dict

PREFIX = "input/msmarco/"
KEY = f"{PREFIX}a.jsonl"


def object_created_pattern(prefix: str = PREFIX, suffix: str = ".jsonl", bucket: str = "osb-in") -> str:
    """The pattern infra/trigger.py gives a pipeline's rule, with its own key wildcard."""
    return json.dumps(
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {
                "bucket": {"name": [bucket]},
                "object": {"key": [{"wildcard": key_wildcard(prefix, suffix)}]},
            },
        }
    )


@pytest.fixture
def trigger(s3: Any) -> dict[str, Any]:
    """A healthy trigger on moto: EventBridge notifications on, the pipeline's rule enabled, empty queues.

    With the local runtime's patch that makes moto report the bucket's EventBridge setting, as S3 does."""
    s3_notifications.install()
    s3.put_bucket_notification_configuration(
        Bucket="osb-in", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name="msmarco-object-created", EventPattern=object_created_pattern(), State="ENABLED")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="submit")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="submit-dlq")["QueueUrl"]
    return {"events": events, "s3": s3, "sqs": sqs, "submit_queue_url": queue, "submit_dlq_url": dlq}


def test_the_bucket_reports_its_eventbridge_setting_as_s3_does(trigger: dict[str, Any]) -> None:
    # Given the input bucket with EventBridge notifications on, and another bucket without
    s3 = trigger["s3"]
    s3.create_bucket(Bucket="osb-plain")
    # When each one's notification configuration is read
    on = s3.get_bucket_notification_configuration(Bucket="osb-in")
    off = s3.get_bucket_notification_configuration(Bucket="osb-plain")
    # Then only the first names EventBridgeConfiguration
    assert on["EventBridgeConfiguration"] == {} and "EventBridgeConfiguration" not in off


def test_a_healthy_trigger_has_no_cause(trigger: dict[str, Any]) -> None:
    # Given notifications on, the rule enabled and empty queues / When the hops are checked
    # Then none is named
    assert TriggerCheck(**trigger).causes("osb-in", KEY) == []


def test_notifications_off_is_named(trigger: dict[str, Any]) -> None:
    # Given the input bucket's EventBridge notifications turned off
    trigger["s3"].put_bucket_notification_configuration(Bucket="osb-in", NotificationConfiguration={})
    # When the hops are checked
    causes = TriggerCheck(**trigger).causes("osb-in", KEY)
    # Then that is the one cause
    assert len(causes) == 1 and "does not send events to EventBridge" in causes[0]


def test_a_disabled_rule_is_named(trigger: dict[str, Any]) -> None:
    # Given the pipeline's rule disabled
    trigger["events"].disable_rule(Name="msmarco-object-created")
    # When the hops are checked / Then the rule is named as disabled
    causes = TriggerCheck(**trigger).causes("osb-in", KEY)
    assert causes == [
        f"the EventBridge rule for s3://osb-in/{KEY} is disabled (msmarco-object-created); enable it"
    ]


def test_a_missing_rule_is_named_even_when_another_pipeline_has_one(trigger: dict[str, Any]) -> None:
    # Given only another pipeline's rule (its own prefix), as after a stack update that lost this one
    trigger["events"].delete_rule(Name="msmarco-object-created")
    trigger["events"].put_rule(
        Name="docs-object-created", EventPattern=object_created_pattern("input/docs/"), State="ENABLED"
    )
    # When the hops are checked
    causes = TriggerCheck(**trigger).causes("osb-in", KEY)
    # Then the missing rule is the cause
    assert len(causes) == 1 and causes[0].startswith("no EventBridge rule takes `Object Created`")


def test_a_filling_dead_letter_queue_and_a_backlog_are_named(trigger: dict[str, Any]) -> None:
    # Given one message in the submit DLQ and more than a backlog's worth in the submit queue
    sqs = trigger["sqs"]
    sqs.send_message(QueueUrl=trigger["submit_dlq_url"], MessageBody="{}")
    for start in range(0, BACKLOG + 1, 10):
        entries = [{"Id": str(n), "MessageBody": "{}"} for n in range(start, min(start + 10, BACKLOG + 1))]
        sqs.send_message_batch(QueueUrl=trigger["submit_queue_url"], Entries=entries)
    # When the hops are checked
    causes = TriggerCheck(**trigger).causes("osb-in", KEY)
    # Then both are named, with their counts
    assert any(f"backing up ({BACKLOG + 1} messages waiting)" in cause for cause in causes)
    assert any("dead-letter queue holds 1 message(s)" in cause for cause in causes)


@pytest.mark.parametrize(
    ("key", "matches"),
    [(KEY, True), (f"{PREFIX}deep/b.jsonl", True), (f"{PREFIX}a.csv", False), ("input/other/a.jsonl", False)],
)
def test_rule_matching_reads_eventbridge_wildcards(key: str, matches: bool) -> None:
    # Given the pipeline's rule pattern / When an object's key is matched / Then as EventBridge would
    assert rule_matches(json.loads(object_created_pattern()), "osb-in", key) is matches
    assert rule_matches(json.loads(object_created_pattern()), "other-bucket", key) is False


def test_a_file_the_suffix_filter_ignores_is_refused_with_the_reason() -> None:
    # Given the pipeline (suffix .jsonl), a nested pipeline with a longer prefix
    config = parse_pipeline(pipeline_dict())
    nested = parse_pipeline(pipeline_dict(name="nested", source={"prefix": f"{PREFIX}nested/"}))
    pipelines = {config.name: config, nested.name: nested}
    # When keys are checked
    # Then a csv, an inference output and a key the nested pipeline takes are refused, each with why
    assert "ending in '.jsonl'" in (ignored_because(f"{PREFIX}x.csv", config, pipelines) or "")
    assert ignored_because("elsewhere/a.jsonl", config, pipelines) is not None
    assert "longer prefix" in (ignored_because(f"{PREFIX}nested/a.jsonl", config, pipelines) or "")
    assert ignored_because(KEY, config, pipelines) is None


def test_wait_returns_the_job_once_the_submit_function_records_it(jobs: JobTable) -> None:
    # Given a job that the submit function records while the CLI waits (its first pause)
    pauses: list[float] = []
    now = [0.0]

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds
        jobs.create("msmarco-1", "msmarco", SourceObject(bucket="osb-in", key=KEY))

    # When the CLI waits for it
    job = wait_for_job(lambda: jobs.get("msmarco-1"), 30, sleep=pause, clock=lambda: now[0])
    # Then it has the job after one pause
    assert job is not None and job["job_id"] == "msmarco-1" and pauses == [1.0]


def test_wait_gives_up_after_the_timeout() -> None:
    # Given no job ever / When the CLI waits 3 seconds of its clock
    now = [0.0]

    def pause(seconds: float) -> None:
        now[0] += seconds

    job = wait_for_job(lambda: None, 3, sleep=pause, clock=lambda: now[0])
    # Then it gives up once the time is over
    assert job is None and now[0] == 3.0


def write_pipeline(tmp_path: Path) -> Path:
    path = tmp_path / "msmarco.yaml"
    path.write_text(yaml.safe_dump(pipeline_dict()), encoding="utf-8")
    return path


def test_submit_refuses_a_csv_before_uploading_anything(
    tmp_path: Path, cli_target: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a jsonl and a csv for a .jsonl pipeline
    (tmp_path / "good.jsonl").write_text("{}\n")
    (tmp_path / "x.csv").write_text("a,b\n")
    pipelines = write_pipeline(tmp_path)
    # When both are submitted
    code = main(
        [
            "--pipelines",
            str(pipelines),
            "submit",
            str(tmp_path / "good.jsonl"),
            str(tmp_path / "x.csv"),
            "--pipeline",
            "msmarco",
        ]
    )
    # Then the usage code, the reason, and nothing uploaded
    assert code == ExitCode.USAGE
    assert "x.csv: not uploaded, the trigger would ignore it" in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket="osb-in").get("KeyCount") == 0


def test_an_upload_that_starts_no_job_exits_non_zero_naming_the_cause(
    tmp_path: Path, cli_target: Any, trigger: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed stack whose pipeline rule is disabled, and no submit function to record jobs
    cli_target.outputs.update(
        SubmitQueueUrl=trigger["submit_queue_url"], SubmitDlqUrl=trigger["submit_dlq_url"]
    )
    trigger["events"].disable_rule(Name="msmarco-object-created")
    (tmp_path / "a.jsonl").write_text('{"_id": "1", "text": "x"}\n')
    (tmp_path / "b.jsonl").write_text('{"_id": "2", "text": "y"}\n')
    # When two files are submitted with a short wait
    code = main(
        [
            "--pipelines",
            str(write_pipeline(tmp_path)),
            "submit",
            str(tmp_path / "a.jsonl"),
            str(tmp_path / "b.jsonl"),
            "--pipeline",
            "msmarco",
            "--appear-timeout",
            "0.01",
        ]
    )
    # Then both were uploaded, no job appeared, and the exit code and message name the disabled rule
    captured = capsys.readouterr()
    assert code == ExitCode.NO_JOB
    assert f"uploaded {tmp_path / 'a.jsonl'} to s3://osb-in/{KEY}; no job yet" in captured.out
    assert f"uploaded {tmp_path / 'b.jsonl'} to s3://osb-in/{PREFIX}b.jsonl; no job yet" in captured.out
    assert f"no job appeared within 0.01s for {KEY}, {PREFIX}b.jsonl" in captured.err
    assert "(msmarco-object-created); enable it" in captured.err


def test_the_same_content_again_names_its_existing_job_without_waiting(
    tmp_path: Path, cli_target: Any, jobs: JobTable, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file whose bytes were submitted before, so its job exists
    from osbatch.models import job_id_for

    path = tmp_path / "a.jsonl"
    path.write_text('{"_id": "1", "text": "x"}\n')
    etag = s3.put_object(Bucket="osb-in", Key=KEY, Body=path.read_bytes())["ETag"].strip('"')
    job_id = job_id_for("msmarco", "osb-in", KEY, etag)
    jobs.create(job_id, "msmarco", SourceObject(bucket="osb-in", key=KEY, etag=etag))
    # When it is submitted again, as JSON
    code = main(
        ["--pipelines", str(write_pipeline(tmp_path)), "submit", str(path), "--pipeline", "msmarco", "--json"]
    )
    # Then it exits OK at once, naming that job
    line = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert line == {"file": str(path), "uri": f"s3://osb-in/{KEY}", "job_id": job_id}


def test_wait_follows_the_job_to_its_end_and_exits_with_its_outcome(
    tmp_path: Path, cli_target: Any, jobs: JobTable, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file whose job exists and has failed
    from osbatch.models import JobStateName, job_id_for

    path = tmp_path / "a.jsonl"
    path.write_text('{"_id": "1", "text": "x"}\n')
    etag = s3.put_object(Bucket="osb-in", Key=KEY, Body=path.read_bytes())["ETag"].strip('"')
    job_id = job_id_for("msmarco", "osb-in", KEY, etag)
    jobs.create(job_id, "msmarco", SourceObject(bucket="osb-in", key=KEY, etag=etag))
    jobs.update(job_id, JobStateName.FAILED, records_in=1, valid=1, dead_lettered=1, reason="model failed")
    # When it is submitted with --wait, into a pipe
    code = main(
        ["--pipelines", str(write_pipeline(tmp_path)), "submit", str(path), "--pipeline", "msmarco", "--wait"]
    )
    # Then the upload line, then the job's progress line at its end, and the failed job's exit code
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"the same content as job {job_id} (FAILED)")
    assert lines[1].startswith(f"{job_id} FAILED prepared=1/1")
    assert code == ExitCode.FAILED
