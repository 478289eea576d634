"""The real handlers, wired from their environment as in Lambda, against moto."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

import osbatch
from osbatch.config import DEPLOYED_PIPELINES_FILE, parse_pipeline, pipelines_to_json
from osbatch.handlers import prepare, submit, wiring
from osbatch.models import JobState
from tests.unit.fake_opensearch import FakeClient
from tests.unit.helpers import FakeContext, create_job_table, object_created, pipeline_dict


@pytest.fixture
def deployed(s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The environment the function factory sets and the pipelines file synth writes, on moto resources."""
    pipelines_file = tmp_path / DEPLOYED_PIPELINES_FILE
    pipelines_file.write_text(pipelines_to_json([parse_pipeline(pipeline_dict())]))
    monkeypatch.setattr(wiring, "PIPELINES_PATH", pipelines_file)
    create_job_table("osbatch-jobs")
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = sfn.create_state_machine(
        name="jobs", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    env = {
        "JOB_TABLE": "osbatch-jobs",
        "OUTPUT_BUCKET": "osb-out",
        "DEAD_LETTER_BUCKET": "osb-dlq",
        "STATE_MACHINE_ARN": arn,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wiring._runtime.cache_clear()  # each test's moto is new; so are its clients
    wiring._client.cache_clear()
    cluster = FakeClient()
    monkeypatch.setattr(wiring, "_opensearch", lambda endpoint, region: cluster)
    yield {
        "s3": s3,
        "sfn": sfn,
        "state_machine_arn": arn,
        "pipelines_file": pipelines_file,
        "cluster": cluster,
    }
    wiring._runtime.cache_clear()
    wiring._client.cache_clear()


def sqs_event(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it; a str body is sent as is."""
    return {
        "Records": [
            {
                "messageId": f"m{number}",
                "receiptHandle": "r",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1732788000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1732788000001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:submit",
                "awsRegion": "us-east-1",
            }
            for number, body in enumerate(bodies)
        ]
    }


def without_key(event: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(event)
    del broken["detail"]["object"]["key"]
    return broken


def with_detail_type(event: dict[str, Any], detail_type: str) -> dict[str, Any]:
    return {**event, "detail-type": detail_type}


def exceptions_logged(caplog: pytest.LogCaptureFixture) -> list[BaseException]:
    return [
        r.exc_info[1] for r in caplog.records if r.levelname == "WARNING" and r.exc_info and r.exc_info[1]
    ]


def test_an_upload_event_starts_a_job(deployed: dict[str, Any]) -> None:
    # Given an uploaded input file and its Object Created event on the queue
    deployed["s3"].put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b"{}\n")
    # When the submit handler runs
    response = submit.handler(sqs_event(object_created("input/msmarco/a.jsonl")), FakeContext())  # type: ignore[arg-type]
    # Then no message failed and one execution started
    assert response == {"batchItemFailures": []}
    executions = deployed["sfn"].list_executions(stateMachineArn=deployed["state_machine_arn"])["executions"]
    assert len(executions) == 1


@pytest.mark.parametrize(
    ("body", "what_is_wrong"),
    [
        (without_key(object_created("input/msmarco/b.jsonl")), "body.detail.object.key\n  Field required"),
        (
            with_detail_type(object_created("input/msmarco/b.jsonl"), "Object Deleted"),
            "body.detail-type\n  Input should be 'Object Created'",
        ),
        ("input/msmarco/b.jsonl was uploaded", "body\n  Invalid JSON"),
    ],
    ids=["missing-key", "wrong-detail-type", "not-json"],
)
def test_a_malformed_message_fails_alone_and_says_what_is_wrong(
    body: dict[str, Any] | str,
    what_is_wrong: str,
    deployed: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a batch with a malformed message between two upload events
    for name in ("a", "c"):
        deployed["s3"].put_object(Bucket="osb-in", Key=f"input/msmarco/{name}.jsonl", Body=b"{}\n")
    event = sqs_event(object_created("input/msmarco/a.jsonl"), body, object_created("input/msmarco/c.jsonl"))
    # When the submit handler runs
    response = submit.handler(event, FakeContext())  # type: ignore[arg-type]
    # Then only the malformed message goes back to the queue (and, after maxReceiveCount, to its DLQ)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # And both good messages started their jobs
    executions = deployed["sfn"].list_executions(stateMachineArn=deployed["state_machine_arn"])["executions"]
    assert len(executions) == 2
    # And the log names what is wrong with the rejected message
    (error,) = exceptions_logged(caplog)
    assert type(error).__name__ == "ValidationError"
    assert what_is_wrong in str(error)


def test_a_batch_of_only_malformed_messages_fails_the_invocation(deployed: dict[str, Any]) -> None:
    # Given a batch whose every message is malformed
    event = sqs_event("not json", {"hello": "world"})
    # When the submit handler runs / Then the invocation fails, so the whole batch is retried
    with pytest.raises(Exception, match="All records failed processing"):
        submit.handler(event, FakeContext())  # type: ignore[arg-type]


def test_prepare_handler_turns_a_job_state_into_the_next_one(deployed: dict[str, Any]) -> None:
    # Given an uploaded file with one good and one bad line, and its job
    deployed["s3"].put_object(
        Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b'{"_id": "1", "text": "t"}\n{"_id": \n'
    )
    state = {
        "job_id": "msmarco-1",
        "pipeline": "msmarco",
        "source": {"bucket": "osb-in", "key": "input/msmarco/a.jsonl"},
    }
    # When the prepare handler runs
    result = JobState.model_validate(prepare.handler(state, FakeContext()))  # type: ignore[arg-type]
    # Then the index was created before anything else, the next state carries the counts,
    # and the bad line is in the dead-letter bucket
    assert [index for index, _ in deployed["cluster"].indices.created] == ["msmarco"]
    assert result.prepared is not None
    assert (result.prepared.records_in, result.prepared.valid, result.prepared.dead_lettered) == (2, 1, 1)
    letter = json.loads(
        deployed["s3"]
        .get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/parse/00000.jsonl")["Body"]
        .read()
    )
    assert (letter["job_id"], letter["line"], letter["stage"]) == ("msmarco-1", 2, "parse")
    assert letter["source"] == "s3://osb-in/input/msmarco/a.jsonl"


def test_a_missing_setting_names_the_variable(
    deployed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function deployed without its job table setting
    monkeypatch.delenv("JOB_TABLE")
    # When it runs / Then the error says which variable and what to do
    with pytest.raises(wiring.SettingsError, match="variable JOB_TABLE is not set; redeploy the stack"):
        prepare.handler(
            {"job_id": "j", "pipeline": "msmarco", "source": {"bucket": "b", "key": "k"}}, FakeContext()
        )  # type: ignore[arg-type]


def test_every_missing_or_empty_setting_is_named_at_once(
    deployed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a submit function whose output bucket is missing and whose job table is empty
    monkeypatch.delenv("OUTPUT_BUCKET")
    monkeypatch.setenv("JOB_TABLE", "")
    # When a batch arrives / Then the invocation fails before any record, naming both variables
    with pytest.raises(
        wiring.SettingsError, match="variables JOB_TABLE, OUTPUT_BUCKET are not set; redeploy the stack"
    ):
        submit.handler(sqs_event(object_created("input/msmarco/a.jsonl")), FakeContext())  # type: ignore[arg-type]


def test_settings_come_from_the_documented_variables() -> None:
    # Given the environment the function factory sets, plus the runtime's own variables
    env = {
        "JOB_TABLE": "t",
        "OUTPUT_BUCKET": "o",
        "DEAD_LETTER_BUCKET": "d",
        "STATE_MACHINE_ARN": "arn:sm",
        "EVENT_BUS_NAME": "bus",
        "AWS_REGION": "eu-west-1",
        "AWS_LAMBDA_FUNCTION_NAME": "osbatch-submit",
    }
    # When settings are read
    settings = wiring.Settings.from_env(env)
    # Then each field holds its variable, optional ones default, and equal environments give equal settings
    assert (settings.job_table, settings.output_bucket, settings.dead_letter_bucket) == ("t", "o", "d")
    assert (settings.state_machine_arn, settings.event_bus_name, settings.region) == (
        "arn:sm",
        "bus",
        "eu-west-1",
    )
    assert settings.opensearch_endpoint == ""
    assert wiring.Settings.from_env(dict(env)) == settings
    assert hash(wiring.Settings.from_env(dict(env))) == hash(settings)  # what the runtime cache keys on


def test_the_deployed_pipelines_are_read_from_the_package() -> None:
    # Given the path the handlers read / Then it is the file synth writes into the osbatch package
    assert Path(str(wiring.PIPELINES_PATH)) == Path(osbatch.__file__).parent / DEPLOYED_PIPELINES_FILE


def test_a_missing_pipelines_file_is_a_clear_deployment_error(
    deployed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given code that was not built by the stack's synth: no pipelines file
    deployed["pipelines_file"].unlink()
    # When a function runs / Then the error names the file and what to do
    with pytest.raises(wiring.SettingsError, match=r"pipelines\.json is missing: .* redeploy the stack"):
        prepare.handler(
            {"job_id": "j", "pipeline": "msmarco", "source": {"bucket": "b", "key": "k"}}, FakeContext()
        )  # type: ignore[arg-type]
