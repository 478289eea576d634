from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.dal import JobTable
from osbatch.steps.submit import ObjectCreatedEvent, Workflow, pipeline_for, source_from_event, submit_object
from tests.unit.helpers import object_created, pipeline_dict


@pytest.fixture
def sfn(aws: None) -> tuple[Any, str]:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = client.create_state_machine(
        name="jobs", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    return client, arn


def submit(key: str, s3: Any, jobs: JobTable, sfn: tuple[Any, str], config: PipelineConfig):  # type: ignore[no-untyped-def]
    client, arn = sfn
    return submit_object(
        source_from_event(ObjectCreatedEvent.model_validate(object_created(key))),
        pipelines={config.name: config},
        jobs=jobs,
        s3=s3,
        workflow=Workflow(client, arn),
    )


def test_an_upload_starts_one_execution_named_after_the_job(
    s3: Any, jobs: JobTable, sfn: tuple[Any, str], config: PipelineConfig
) -> None:
    # Given an uploaded input file
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b"{}\n")
    # When its event is submitted
    outcome = submit("input/msmarco/a.jsonl", s3, jobs, sfn, config)
    # Then one execution runs under the job id, with the object's real etag
    executions = sfn[0].list_executions(stateMachineArn=sfn[1])["executions"]
    assert outcome.started and [execution["name"] for execution in executions] == [outcome.job_id]
    job = jobs.get(outcome.job_id)  # type: ignore[arg-type]
    assert job is not None and job["state"] == "CREATED" and job["etag"] != "stale"


def test_a_duplicate_event_starts_nothing(
    s3: Any, jobs: JobTable, sfn: tuple[Any, str], config: PipelineConfig
) -> None:
    # Given an object whose event was already submitted
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b"{}\n")
    first = submit("input/msmarco/a.jsonl", s3, jobs, sfn, config)
    # When the same event arrives again
    second = submit("input/msmarco/a.jsonl", s3, jobs, sfn, config)
    # Then it is recognised as the same job and no second execution starts
    assert (second.job_id, second.started) == (first.job_id, False)
    assert len(sfn[0].list_executions(stateMachineArn=sfn[1])["executions"]) == 1


def test_new_bytes_under_the_same_key_are_a_new_job(
    s3: Any, jobs: JobTable, sfn: tuple[Any, str], config: PipelineConfig
) -> None:
    # Given a file that was processed, then overwritten with new content
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b"{}\n")
    first = submit("input/msmarco/a.jsonl", s3, jobs, sfn, config)
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b'{"changed": 1}\n')
    # When the new version's event arrives
    second = submit("input/msmarco/a.jsonl", s3, jobs, sfn, config)
    # Then it is a different job
    assert second.started and second.job_id != first.job_id


def test_url_encoded_keys_are_resolved(
    s3: Any, jobs: JobTable, sfn: tuple[Any, str], config: PipelineConfig
) -> None:
    # Given a key with a space, announced URL-encoded as S3 notifications do
    s3.put_object(Bucket="osb-in", Key="input/msmarco/my file.jsonl", Body=b"{}\n")
    # When submitted
    outcome = submit("input/msmarco/my+file.jsonl", s3, jobs, sfn, config)
    # Then the job reads the real key
    assert jobs.get(outcome.job_id)["source"] == "s3://osb-in/input/msmarco/my file.jsonl"  # type: ignore[arg-type,index]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("input/msmarco/a.jsonl.out", "not an input object"),
        ("input/msmarco/a.manifest", "not an input object"),
        ("input/other/a.jsonl", "no pipeline has a matching prefix"),
        ("input/msmarco/a.csv", "no pipeline has a matching prefix"),
        ("input/msmarco/gone.jsonl", "no longer exists"),
    ],
)
def test_objects_that_are_not_input_are_ignored_with_a_reason(
    key: str, why: str, s3: Any, jobs: JobTable, sfn: tuple[Any, str], config: PipelineConfig
) -> None:
    # Given an event for an object that is not pipeline input / When submitted
    outcome = submit(key, s3, jobs, sfn, config)
    # Then nothing starts and the outcome says why
    assert not outcome.started and why in outcome.detail


def test_an_event_names_the_object_as_it_was_announced() -> None:
    # Given an Object Created event for a key with a space, URL-encoded as S3 sends it
    event = ObjectCreatedEvent.model_validate(object_created("input/msmarco/my+file.jsonl", etag="abc"))
    # When its object is read / Then bucket, key, etag and size are the event's, the key left as sent
    source = source_from_event(event)
    assert (source.bucket, source.key, source.etag, source.size) == (
        "osb-in",
        "input/msmarco/my+file.jsonl",
        "abc",
        3,
    )


def test_the_most_specific_prefix_wins() -> None:
    # Given two pipelines with nested prefixes
    broad = parse_pipeline(pipeline_dict(name="broad", source={"prefix": "input/"}))
    narrow = parse_pipeline(pipeline_dict(name="narrow", source={"prefix": "input/msmarco/"}))
    pipelines = {"broad": broad, "narrow": narrow}
    # When keys are routed / Then each goes to the longest matching prefix
    assert pipeline_for("input/msmarco/a.jsonl", pipelines) is narrow
    assert pipeline_for("input/x/a.jsonl", pipelines) is broad
