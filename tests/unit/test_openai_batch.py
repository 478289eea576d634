"""The OpenAI Batch API emulator (HTTP on 127.0.0.1) with the official SDK and with osbatch's backend."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from moto import mock_aws

from local.emulators.faults import FAULTS
from local.emulators.openai_server import BatchStore, serve
from local.model import Embedder, load_embedder
from osbatch.backends.base import THROTTLED_PAST_WINDOW
from osbatch.backends.openai import OpenAIBackend, custom_id, line_of
from osbatch.backends.openai_http import OpenAIHttp
from osbatch.config import OpenAIJobConfig
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import JobStateName, RemoteJob
from osbatch.record_paths import inference_error
from osbatch.steps.support.join import MISSING_FROM_OUTPUT, join_outputs

KEY = "sk-test-0123456789"
BUCKET = "osb-out"


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return load_embedder()


@pytest.fixture
def api(minilm: Embedder) -> Iterator[str]:
    FAULTS.reset()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = serve(port, BatchStore(lambda: minilm), lambda: KEY)
    yield f"http://127.0.0.1:{port}/v1"
    server.shutdown()
    FAULTS.reset()


def request_lines(texts: list[str], first_line: int = 1) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": custom_id(number),
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "text-embedding-3-small", "input": text},
            }
        ).encode()
        + b"\n"
        for number, text in enumerate(texts, first_line)
    )


def test_the_official_sdk_runs_a_batch_unchanged(api: str) -> None:
    # Given the SDK pointed at the emulator, and one request the model will fail
    FAULTS.update(fail_records_containing="POISON")
    client = openai.OpenAI(base_url=api, api_key=KEY)
    # When it uploads a file, creates a batch and retrieves it until it ends
    uploaded = client.files.create(file=("in.jsonl", request_lines(["a", "POISON", "c"])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    while batch.status not in {"completed", "failed", "cancelled", "expired"}:
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)
    # Then it completed with the counts, results in the output file and the failure in the error file
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        3,
        2,
        1,
    )
    assert batch.output_file_id and batch.error_file_id
    outputs = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert sorted(line["custom_id"] for line in outputs) == ["line-1", "line-3"]
    # text-embedding-3-small's full size, as the request names no dimensions
    assert all(len(line["response"]["body"]["data"][0]["embedding"]) == 1536 for line in outputs)
    assert [(line["custom_id"], line["response"]) for line in errors] == [("line-2", None)]
    assert errors[0]["error"]["code"] == "server_error"


def test_a_wrong_key_is_refused_as_the_api_does(api: str) -> None:
    # Given a client with the wrong key / When it lists batches / Then it gets a 401 AuthenticationError
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=api, api_key="sk-wrong").batches.list()


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="openai-key", SecretString=KEY)
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


def wait(job: OpenAIBackend, remote: RemoteJob, clock: Clock | None = None) -> JobStateName:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = job.status(remote).state
        if state.terminal:
            return state
        time.sleep(0.05)
    raise AssertionError("the batch did not end")


def submit(job: OpenAIBackend) -> RemoteJob:
    return job.submit(
        "docs-0123456789abcdef", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/output/"
    )


def test_one_upload_is_a_batch_per_part_and_the_results_join_back_onto_their_records(
    api: str, aws: tuple[Any, Any]
) -> None:
    # Given two prepared parts, one request of which the model fails
    s3, _ = aws
    FAULTS.update(fail_records_containing="POISON")
    job = backend(api, aws, Clock())
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
    api: str, aws: tuple[Any, Any]
) -> None:
    # Given two parts, and a service that returns neither a result nor an error for one record
    s3, _ = aws
    FAULTS.update(drop_records_containing="LOST")
    job = backend(api, aws, Clock())
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
    api: str, aws: tuple[Any, Any]
) -> None:
    # Given the enqueued-token limit fails the first batch, and a one-hour retry window
    s3, _ = aws
    FAULTS.update(throttle_creates=1)
    clock = Clock()
    job = backend(api, aws, clock)
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
    while job.status(second).state is JobStateName.RUNNING and clock.now < 1000 + 3600:
        clock.now += 1200
        time.sleep(0.05)
    clock.now += 1200
    # Then the job FAILS with the error, flagged as throttled past the window (FailJob dead-letters its file)
    status = job.status(second)
    assert status.state is JobStateName.FAILED
    assert "token_limit_exceeded" in (status.reason or "")
    assert status.progress[THROTTLED_PAST_WINDOW] is True


def test_cancel_ends_cancelled(api: str, aws: tuple[Any, Any]) -> None:
    # Given a batch held in progress
    s3, _ = aws
    FAULTS.update(hold_jobs=True)
    job = backend(api, aws, Clock())
    prepare_parts(s3, job, [["alpha"]])
    remote = submit(job)
    # When it is cancelled / Then it ends CANCELLED
    job.cancel(remote)
    assert wait(job, remote) is JobStateName.CANCELLED


def test_custom_ids_give_back_the_line() -> None:
    assert line_of(custom_id(123456)) == 123456
    assert line_of("r1") is None and line_of(None) is None
