"""The real handlers, wired from their environment as in Lambda, against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from osbatch.config import parse_pipeline, pipelines_to_json
from osbatch.handlers import prepare, submit, wiring
from osbatch.models import JobState
from tests.unit.conftest import create_job_table, pipeline_dict
from tests.unit.fake_opensearch import FakeClient


@dataclass
class FakeContext:
    function_name: str = "osbatch-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:osbatch-test"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def deployed(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The environment the function factory sets, pointing at moto resources."""
    create_job_table("osbatch-jobs")
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = sfn.create_state_machine(
        name="jobs", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    env = {
        "OSBATCH_PIPELINES": pipelines_to_json([parse_pipeline(pipeline_dict())]),
        "JOB_TABLE": "osbatch-jobs",
        "INPUT_BUCKET": "osb-in",
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
    yield {"s3": s3, "sfn": sfn, "state_machine_arn": arn, "cluster": cluster}
    wiring._runtime.cache_clear()
    wiring._client.cache_clear()


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{number}",
                "receiptHandle": "r",
                "body": json.dumps(body),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:submit",
                "awsRegion": "us-east-1",
            }
            for number, body in enumerate(bodies)
        ]
    }


def test_submit_reports_only_the_bad_message_as_failed(deployed: dict[str, Any]) -> None:
    # Given a batch with one upload event and one message that is not an S3 event
    deployed["s3"].put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b"{}\n")
    event = sqs_event(
        {"detail": {"bucket": {"name": "osb-in"}, "object": {"key": "input/msmarco/a.jsonl", "size": 3}}},
        {"hello": "world"},
    )
    # When the submit handler runs
    response = submit.handler(event, FakeContext())  # type: ignore[arg-type]
    # Then the good message started a job and only the bad one goes back to the queue (and to its DLQ)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    executions = deployed["sfn"].list_executions(stateMachineArn=deployed["state_machine_arn"])["executions"]
    assert len(executions) == 1


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
    with pytest.raises(wiring.SettingsError, match="JOB_TABLE is not set; redeploy the stack"):
        prepare.handler(
            {"job_id": "j", "pipeline": "msmarco", "source": {"bucket": "b", "key": "k"}}, FakeContext()
        )  # type: ignore[arg-type]
