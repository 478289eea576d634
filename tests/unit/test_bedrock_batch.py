"""Bedrock batch inference: the backend module against the emulator inside moto (in-process mock_aws).

The emulator's format contract (recordId/modelInput/modelOutput|error lines, manifest.json.out, states) is
what the backend parses, so both are exercised together here, plus the join that gives records their ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from local.emulators.faults import FAULTS
from osbatch.backends.base import BackendThrottled
from osbatch.backends.bedrock import BedrockBackend, line_of, model_input, record_id
from osbatch.config import BedrockJobConfig, BedrockModelFamily
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import JobStateName, RemoteJob
from osbatch.record_paths import inference_error
from osbatch.steps.support.join import join_outputs
from tests.helpers import eventually

REGION = "us-east-1"
BUCKET = "osb-out"
ROLE = "arn:aws:iam::123456789012:role/osbatch-bedrock"
TITAN = BedrockJobConfig(model_id="amazon.titan-embed-text-v2:0", family=BedrockModelFamily.TITAN_EMBED_V2)


@pytest.fixture
def aws(emulators: None) -> Iterator[tuple[Any, Any]]:
    FAULTS.update(min_records_per_job=1)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        # No client-side retries: the workflow's Retry rule is what retries a throttled submit.
        no_retries = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        yield s3, boto3.client("bedrock", region_name=REGION, config=no_retries)


def backend(clients: tuple[Any, Any], settings: BedrockJobConfig = TITAN) -> BedrockBackend:
    s3, bedrock = clients
    return BedrockBackend(settings, bedrock, s3, {"osbatch:pipeline": "docs"}, role_arn=ROLE)


def prepare(clients: tuple[Any, Any], job: BedrockBackend, texts: list[str]) -> None:
    """What Prepare writes for a joins_source backend: input lines and, cut the same, source records."""
    s3, _ = clients
    records = [{"_id": f"doc-{n}", "text": text, "_osbatch": {"line": n}} for n, text in enumerate(texts, 1)]
    lines = [job.input_line(record, record["_osbatch"]["line"], record["text"]) for record in records]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=BUCKET, Key="jobs/j/input/part-00000.jsonl", Body=body.encode())
    sources = "".join(json.dumps(record) + "\n" for record in records)
    s3.put_object(Bucket=BUCKET, Key="jobs/j/source/part-00000.jsonl", Body=sources.encode())


def wait(job: BedrockBackend, remote: RemoteJob) -> JobStateName:
    """The remote job's state once it ended (the emulator runs it on a thread)."""

    def ended() -> JobStateName | None:
        state = job.status(remote).state
        return state if state.terminal else None

    return eventually(ended, timeout=60, interval=0.05, what=f"the end of {remote.id}")


def read_lines(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_record_ids_are_eleven_alphanumerics_that_give_back_the_line() -> None:
    # Given line numbers from the first to the largest a recordId holds
    # When they are encoded and decoded
    ids = [record_id(line) for line in (1, 42, 9_999_999_999)]
    # Then each id is 11 alphanumeric characters and decodes to its line; foreign ids decode to nothing
    assert all(len(value) == 11 and value.isalnum() for value in ids)
    assert [line_of(value) for value in ids] == [1, 42, 9_999_999_999]
    assert line_of("CALL0000001") is None and line_of(None) is None
    with pytest.raises(ValueError):
        record_id(10**10)


def test_templates_per_model_family() -> None:
    # Given one text and the three families' settings
    cohere = BedrockJobConfig(model_id="cohere.embed-english-v3", family=BedrockModelFamily.COHERE_EMBED)
    claude = BedrockJobConfig(
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        family=BedrockModelFamily.ANTHROPIC_MESSAGES,
        prompt="Keywords of: {text}",
        max_tokens=64,
    )
    # When the model inputs are built
    titan_body, cohere_body, claude_body = (model_input(s, "a {b} c") for s in (TITAN, cohere, claude))
    # Then each is the InvokeModel body of its family, with braces in the text left alone
    assert titan_body == {"inputText": "a {b} c", "dimensions": 1024, "normalize": True}
    assert cohere_body == {"texts": ["a {b} c"], "input_type": "search_document", "truncate": "END"}
    assert claude_body["max_tokens"] == 64
    assert claude_body["messages"][0]["content"][0] == {"type": "text", "text": "Keywords of: a {b} c"}


def test_job_embeds_and_ingest_gets_ids_back_through_the_join(aws: tuple[Any, Any]) -> None:
    # Given three prepared records, the second of which the model will fail
    s3, _ = aws
    FAULTS.update(fail_records_containing="POISON")
    job = backend(aws)
    prepare(aws, job, ["first text", "POISON text", "third text"])
    # When the job runs to its end
    remote = job.submit(
        "docs-0123456789abcdef", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/"
    )
    state = wait(job, remote)
    status = job.status(remote)
    # Then it is PARTIALLY_COMPLETED with the manifest's counts, not COMPLETED
    assert state is JobStateName.PARTIALLY_COMPLETED
    assert status.progress["errorRecordCount"] == 1 and status.progress["successRecordCount"] == 2
    assert "1 of 3 records failed" in (status.reason or "")
    # And the output has Bedrock's shape: one .jsonl.out with a line per record, and no manifest in it
    outputs = job.outputs(remote)
    assert [output.key.rsplit("/", 1)[-1] for output in outputs] == ["part-00000.jsonl.out"]
    raw = read_lines(s3, outputs[0].key)
    assert sorted(line["recordId"] for line in raw) == [record_id(1), record_id(2), record_id(3)]
    # in the size the job's Titan body asks for (TITAN: dimensions 1024), not the local model's 384
    assert all(
        len(line["modelOutput"]["embedding"]) == TITAN.dimensions for line in raw if "modelOutput" in line
    )
    # When the output is joined onto the source records
    joined = join_outputs(
        job,
        s3,
        outputs,
        source_bucket=BUCKET,
        source_prefix="jobs/j/source/",
        joined_prefix="jobs/j/joined/",
        dead_letters=lambda number: DeadLetterWriter(
            s3, BUCKET, f"dead-letter/j/inference/{number:05d}.jsonl", job_id="j", source="s3://in/a"
        ),
    )
    assert joined.missing == 0  # every record sent has a result or an error
    records = {record["_osbatch"]["line"]: record for record in read_lines(s3, joined.outputs[0].key)}
    # Then every record has its _id, text and model output again, and the failed one cites its line
    assert records[1]["_id"] == "doc-1" and records[1]["text"] == "first text"
    assert len(records[3]["modelOutput"]["embedding"]) == TITAN.dimensions
    assert records[2]["_id"] == "doc-2" and "modelOutput" not in records[2]
    assert (inference_error(records[2]) or "").startswith("400: ")
    assert inference_error(records[1]) is None


def test_claude_messages_output_maps_text_into_a_field(aws: tuple[Any, Any]) -> None:
    # Given a Claude enrichment job
    s3, _ = aws
    settings = BedrockJobConfig(
        model_id="anthropic.claude-3-haiku-20240307-v1:0", family=BedrockModelFamily.ANTHROPIC_MESSAGES
    )
    job = backend(aws, settings)
    prepare(aws, job, ["Python is a language. It is popular. It has many libraries."])
    # When it completes
    remote = job.submit(
        "docs-claude0000000000", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/"
    )
    assert wait(job, remote) is JobStateName.COMPLETED
    # Then the message content is text where field_map's `$.modelOutput.content[0].text` finds it
    (line,) = read_lines(s3, job.outputs(remote)[0].key)
    assert line["modelOutput"]["type"] == "message"
    assert line["modelOutput"]["content"][0]["text"].startswith("Python is a language.")


def test_throttled_create_raises_for_retry_and_a_resubmit_finds_the_same_job(aws: tuple[Any, Any]) -> None:
    # Given Bedrock throttles the next create
    FAULTS.update(throttle_creates=1)
    job = backend(aws)
    prepare(aws, job, ["a text"])
    args = ("docs-1111111111111111", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/")
    # When StartJob submits, then submits again after its retry, and once more (a re-run)
    with pytest.raises(BackendThrottled, match="ThrottlingException"):
        job.submit(*args)
    first, again = job.submit(*args), job.submit(*args)
    # Then the retry created the job and the re-run found it, not a second one
    assert first.arn == again.arn
    _, bedrock = aws
    assert len(bedrock.list_model_invocation_jobs()["invocationJobSummaries"]) == 1


def test_cancel_stops_a_running_job(aws: tuple[Any, Any]) -> None:
    # Given a job that stays in progress
    FAULTS.update(hold_jobs=True)
    job = backend(aws)
    prepare(aws, job, ["a text"])
    remote = job.submit(
        "docs-2222222222222222", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/"
    )
    assert job.status(remote).state is JobStateName.RUNNING
    # When it is cancelled
    job.cancel(remote)
    # Then it ends CANCELLED, and a late second cancel is harmless
    assert wait(job, remote) is JobStateName.CANCELLED
    job.cancel(remote)


def test_too_few_records_fail_validation(aws: tuple[Any, Any]) -> None:
    # Given Bedrock's default minimum of 100 records per job and a file of 2
    FAULTS.update(min_records_per_job=100)
    job = backend(aws)
    prepare(aws, job, ["a", "b"])
    # When the job runs
    remote = job.submit(
        "docs-3333333333333333", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/"
    )
    # Then it fails with the reason
    assert wait(job, remote) is JobStateName.FAILED
    assert "at least 100 records" in (job.status(remote).reason or "")
