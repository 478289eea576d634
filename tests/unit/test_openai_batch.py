"""osbatch's OpenAI backend against the OpenAI Batch API emulator (HTTP on 127.0.0.1, the `openai_api`
fixture); tests/local/unit/test_openai_emulator.py holds the emulator's own tests, with the official SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulators.faults import FAULTS
from osbatch.backends.base import THROTTLED_PAST_WINDOW
from osbatch.backends.openai import OpenAIBackend, custom_id, line_of
from osbatch.backends.openai_http import OpenAIHttp
from osbatch.config import OpenAIJobConfig
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import JobStateName, RemoteJob
from osbatch.record_paths import inference_error
from osbatch.steps.support.join import MISSING_FROM_OUTPUT, join_outputs
from tests.helpers import OPENAI_TEST_KEY, eventually

BUCKET = "osb-out"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="openai-key", SecretString=OPENAI_TEST_KEY)
        yield s3, secrets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def backend(api: str, aws: tuple[Any, Any], clock: Clock, window: int = 3600) -> OpenAIBackend:
    s3, secrets = aws
    settings = OpenAIJobConfig(api_base=api, api_key_secret="openai-key", model="text-embedding-3-small")
    return OpenAIBackend(
        settings, OpenAIHttp(api, "openai-key", secrets), s3, retry_window_seconds=window, now=clock
    )


def prepare_parts(s3: Any, job: OpenAIBackend, parts: list[list[str]]) -> None:
    """What Prepare writes: input lines per part and the source records cut the same."""
    line = 1
    for number, texts in enumerate(parts):
        records = [
            {"_id": f"doc-{line + i}", "text": text, "_osbatch": {"line": line + i}}
            for i, text in enumerate(texts)
        ]
        inputs = [job.input_line(r, r["_osbatch"]["line"], r["text"]) for r in records]
        name = f"part-{number:05d}.jsonl"
        s3.put_object(
            Bucket=BUCKET, Key=f"jobs/j/input/{name}", Body="".join(json.dumps(i) + "\n" for i in inputs)
        )
        s3.put_object(
            Bucket=BUCKET, Key=f"jobs/j/source/{name}", Body="".join(json.dumps(r) + "\n" for r in records)
        )
        line += len(texts)


def wait(job: OpenAIBackend, remote: RemoteJob) -> JobStateName:
    """The remote job's state once it ended (the emulator runs the batch on a thread)."""

    def ended() -> JobStateName | None:
        state = job.status(remote).state
        return state if state.terminal else None

    return eventually(ended, timeout=60, interval=0.05, what="the end of the batch")


def submit(job: OpenAIBackend) -> RemoteJob:
    return job.submit(
        "docs-0123456789abcdef", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/"
    )


def test_one_upload_is_a_batch_per_part_and_the_results_join_back_onto_their_records(
    openai_api: str, aws: tuple[Any, Any]
) -> None:
    # Given two prepared parts, one request of which the model fails
    s3, _ = aws
    FAULTS.update(fail_records_containing="POISON")
    job = backend(openai_api, aws, Clock())
    prepare_parts(s3, job, [["alpha text", "POISON text"], ["gamma text"]])
    # When the job is submitted twice (a re-run of StartJob) and runs to its end
    remote = submit(job)
    assert submit(job).arn == remote.arn  # nothing uploaded or created twice
    state = wait(job, remote)
    status = job.status(remote)
    # Then two batches ran, and the job is PARTIALLY_COMPLETED with the summed request_counts
    assert len(remote.arn.split(",")) == 2
    assert state is JobStateName.PARTIALLY_COMPLETED
    assert (status.progress["total"], status.progress["completed"], status.progress["failed"]) == (3, 2, 1)
    # And after the join every result has its record's _id and text, and the failure cites its line
    outputs = job.outputs(remote)
    joined = join(job, s3, outputs).outputs
    records = {}
    for output in joined:
        for raw in s3.get_object(Bucket=BUCKET, Key=output.key)["Body"].read().splitlines():
            record = json.loads(raw)
            records[record["_osbatch"]["line"]] = record
    assert records[1]["_id"] == "doc-1" and len(records[1]["response"]["data"][0]["embedding"]) == 1536
    assert records[3]["_id"] == "doc-3" and records[3]["text"] == "gamma text"
    assert (inference_error(records[2]) or "").startswith("server_error: ")


def join(job: OpenAIBackend, s3: Any, outputs: Any) -> Any:
    def letters(number: int) -> DeadLetterWriter:
        key = f"dead-letter/j/inference/{number:05d}.jsonl"
        return DeadLetterWriter(s3, BUCKET, key, job_id="j", source="s3://in/a.jsonl")

    return join_outputs(
        job,
        s3,
        outputs,
        source_bucket=BUCKET,
        source_prefix="jobs/j/source/",
        joined_prefix="jobs/j/joined/",
        dead_letters=letters,
    )


def test_a_record_the_service_silently_drops_becomes_a_dead_letter_at_the_join(
    openai_api: str, aws: tuple[Any, Any]
) -> None:
    # Given two parts, and a service that returns neither a result nor an error for one record
    s3, _ = aws
    FAULTS.update(drop_records_containing="LOST")
    job = backend(openai_api, aws, Clock())
    prepare_parts(s3, job, [["alpha text"], ["LOST text", "gamma text"]])
    remote = submit(job)
    wait(job, remote)
    # When the output is joined onto the records sent
    joined = join(job, s3, job.outputs(remote))
    # Then the dropped record (line 2) is one dead letter with its record and line, and no joined line
    assert joined.missing == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="dead-letter/j/")["Contents"]]
    (key,) = keys
    (letter,) = [json.loads(raw) for raw in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()]
    assert (letter["line"], letter["stage"], letter["reason"]) == (2, "inference", MISSING_FROM_OUTPUT)
    assert letter["record"]["_id"] == "doc-2"
    lines = [
        json.loads(raw)["_osbatch"]["line"]
        for output in joined.outputs
        for raw in s3.get_object(Bucket=BUCKET, Key=output.key)["Body"].read().splitlines()
    ]
    assert sorted(lines) == [1, 3]


def test_token_limit_exceeded_is_retried_then_gives_up_after_the_window(
    openai_api: str, aws: tuple[Any, Any]
) -> None:
    # Given the enqueued-token limit fails the first batch, and a one-hour retry window
    s3, _ = aws
    FAULTS.update(throttle_creates=1)
    clock = Clock()
    job = backend(openai_api, aws, clock)
    prepare_parts(s3, job, [["alpha"]])
    remote = submit(job)
    # When the job is polled
    # Then the failed batch is replaced and the job completes
    assert wait(job, remote) is JobStateName.COMPLETED
    # Given the limit hits every batch from now on, and the window passes
    FAULTS.update(throttle_creates=1000)
    prepare_parts(s3, job, [["beta"]])
    second = job.submit(
        "docs-1111111111111111", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/k/output/"
    )

    def ended_or_window_passed() -> bool:
        if job.status(second).state is not JobStateName.RUNNING or clock.now >= 1000 + 3600:
            return True
        clock.now += 1200
        return False

    eventually(ended_or_window_passed, interval=0.05, what="the end of the batch or of the window")
    clock.now += 1200
    # Then the job FAILS with the error, flagged as throttled past the window (FailJob dead-letters its file)
    status = job.status(second)
    assert status.state is JobStateName.FAILED
    assert "token_limit_exceeded" in (status.reason or "")
    assert status.progress[THROTTLED_PAST_WINDOW] is True


def test_cancel_ends_cancelled(openai_api: str, aws: tuple[Any, Any]) -> None:
    # Given a batch held in progress
    s3, _ = aws
    FAULTS.update(hold_jobs=True)
    job = backend(openai_api, aws, Clock())
    prepare_parts(s3, job, [["alpha"]])
    remote = submit(job)
    # When it is cancelled / Then it ends CANCELLED
    job.cancel(remote)
    assert wait(job, remote) is JobStateName.CANCELLED


def test_custom_ids_give_back_the_line() -> None:
    assert line_of(custom_id(123456)) == 123456
    assert line_of("r1") is None and line_of(None) is None
