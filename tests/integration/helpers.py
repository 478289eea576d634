"""Helpers shared by the integration tests: deploy the test pipelines, upload, wait for a job's end, read
its dead letters and report, and set the emulators' faults."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from local.aws import session
from local.deploy import deploy_local, load_pipelines
from local.emulators.faults import FAULTS_PATH
from local.runtime import AWS_URL, OPENAI_URL, LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.contracts import report_key
from osbatch.dal import JobTable
from osbatch.models import JobStateName, job_id_for
from osbatch.search.client import opensearch_client
from tests.helpers import eventually

PIPELINES = str(Path(__file__).parent / "pipelines" / "*.yaml")  # the test pipelines (not the examples)
OPENAI_BASE = OPENAI_URL.removesuffix("/v1")
# Texts with known neighbours: "decompress a .gz file" finds the gzip one first.
TOPICS = [
    ("gzip", "Open a gzip-compressed file in binary or text mode, returning a file object."),
    ("thread", "A class that represents a thread of control running in the background."),
    ("date", "Return the current local date and time as a datetime object."),
]
DIM = 384  # the local MiniLM's vectors


def pipeline_configs() -> dict[str, PipelineConfig]:
    return {config.name: config for config in load_pipelines(PIPELINES)}


def deploy_stack(runtime: LocalRuntime, *fresh_indices: str) -> Any:
    """The test pipelines' stack on the local runtime; the indices named start empty."""
    client = opensearch_client(runtime.opensearch.url)
    for index in fresh_indices:
        client.indices.delete(index=index, ignore_unavailable=True)
    return deploy_local(PIPELINES, opensearch_url=runtime.opensearch.url, progress=lambda _: None)


def job_table(stack: Any) -> JobTable:
    return JobTable(session().resource("dynamodb", endpoint_url=AWS_URL).Table(stack.outputs["JobTableName"]))


def upload(stack: Any, config: PipelineConfig, name: str, body: bytes) -> str:
    """Put `body` under the pipeline's prefix in the input bucket; the id of the job it starts."""
    s3 = session().client("s3", endpoint_url=AWS_URL)
    bucket = stack.outputs["InputBucketName"]
    key = f"{config.source.prefix}{name}"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    return job_id_for(config.name, bucket, key, etag)


def wait_for_end(jobs: JobTable, job_id: str, timeout: float = 300) -> dict[str, Any]:
    """The job's item once its state is terminal."""

    def ended() -> dict[str, Any] | None:
        job = jobs.get(job_id)
        return job if job and JobStateName(job["state"]).terminal else None

    try:
        found: dict[str, Any] = eventually(
            ended, timeout=timeout, interval=0.5, what=f"the end of job {job_id}"
        )
    except AssertionError as error:
        raise AssertionError(f"{error}: {jobs.get(job_id)}") from None
    return found


def wait_for_remote_jobs(jobs: JobTable, job_id: str) -> list[dict[str, Any]]:
    """Once StartJob recorded the job's remote jobs: what a cancel needs to find running."""
    found: list[dict[str, Any]] = eventually(
        lambda: (jobs.get(job_id) or {}).get("remote_jobs"), what=f"the remote jobs of {job_id}"
    )
    return found


def stop_held_job(
    stack: Any, config: PipelineConfig, jobs: JobTable, name: str, records: int
) -> tuple[str, dict[str, Any], str]:
    """A job of `records` texts whose remote job the emulators hold in progress (the hold_jobs fault), so
    its execution waits in WaitForJob, then stopped by an operator (StopExecution, never a Catch): the job's
    id, its remote job, and the execution's ARN."""
    set_faults(hold_jobs=True)
    body = b"".join(
        json.dumps({"_id": f"{name}-{n}", "text": f"passage {n}"}).encode() + b"\n" for n in range(records)
    )
    job_id = upload(stack, config, f"{name}-{time.time_ns()}.jsonl", body)
    (remote,) = wait_for_remote_jobs(jobs, job_id)
    execution = str(jobs.get(job_id)["execution_arn"])  # type: ignore[index]
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    sfn.stop_execution(executionArn=execution, error="Operator", cause="stopped by hand")
    return job_id, remote, execution


def wait_for_free_slots(jobs: JobTable, pipeline: str) -> None:
    """Wait until no job holds one of the pipeline's job slots. Finalize and FailJob give a job's slot back
    just after they write the terminal state wait_for_end sees, so the two are not read at one instant."""
    eventually(lambda: jobs.slot_holders(pipeline) == set(), what=f"every job slot of {pipeline} given back")


def submitted_all(stack: Any) -> None:
    """Wait until the submit queue holds no message, visible or in flight."""
    sqs = session().client("sqs", endpoint_url=AWS_URL)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def empty() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=stack.outputs["SubmitQueueUrl"], AttributeNames=names)
        return all(value == "0" for value in counts["Attributes"].values())

    eventually(empty, interval=0.2, what="an empty submit queue")


def dead_letters(stack: Any, job_id: str) -> list[dict[str, Any]]:
    s3 = session().client("s3", endpoint_url=AWS_URL)
    bucket = stack.outputs["DeadLetterBucketName"]
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"dead-letter/{job_id}/").get("Contents", [])
    lines = []
    for item in listing:
        lines += s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines()
    return [json.loads(line) for line in lines]


def report(stack: Any, job_id: str) -> dict[str, Any]:
    """The job's report in the output bucket."""
    s3 = session().client("s3", endpoint_url=AWS_URL)
    body = s3.get_object(Bucket=stack.outputs["OutputBucketName"], Key=report_key(job_id))["Body"].read()
    return dict(json.loads(body))


def set_faults(**faults: Any) -> None:
    """The emulators' fault settings (local/emulators/faults.py), in the AWS and the OpenAI emulator;
    none clears them (and the emulators' peak counts)."""
    method = "POST" if faults else "DELETE"
    for base in (AWS_URL, OPENAI_BASE):
        request = urllib.request.Request(
            f"{base}{FAULTS_PATH}", data=json.dumps(faults).encode(), method=method
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


def faults(base: str = AWS_URL) -> dict[str, Any]:
    """What an emulator's faults stand at: those left, the checkpoints let through, the peak counts."""
    with urllib.request.urlopen(f"{base}{FAULTS_PATH}", timeout=10) as response:
        return dict(json.loads(response.read()))


@contextlib.contextmanager
def sagemaker_model_environment(model: str, environment: dict[str, str]) -> Iterator[None]:
    """The SageMaker model with this container environment, restored afterwards: for example
    OSBATCH_LOCAL_HOLD_UNTIL_STOPPED, which keeps its transform jobs running until they are stopped."""
    sagemaker = session().client("sagemaker", endpoint_url=AWS_URL)
    healthy = sagemaker.describe_model(ModelName=model)
    sagemaker.delete_model(ModelName=model)
    sagemaker.create_model(
        ModelName=model,
        PrimaryContainer={"Image": "local", "Environment": environment},
        ExecutionRoleArn=healthy["ExecutionRoleArn"],
    )
    try:
        yield
    finally:
        sagemaker.delete_model(ModelName=model)
        sagemaker.create_model(
            ModelName=model,
            PrimaryContainer=healthy["PrimaryContainer"],
            ExecutionRoleArn=healthy["ExecutionRoleArn"],
        )


def vector(seed: float) -> list[float]:
    return [seed] + [0.5] * (DIM - 1)


class OpenAIFiles(BaseHTTPRequestHandler):
    """The OpenAI Files API's content endpoint, for the files it is given and the key `test-key`."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        file_id = self.path.split("/")[-2]
        content = self.files.get(file_id)
        self.send_response(200 if content is not None else 404)
        self.end_headers()
        if content is not None and self.headers.get("Authorization") == "Bearer test-key":
            self.wfile.write(content)

    def log_message(self, *args: object) -> None:
        pass


def serve_openai_example(monkeypatch: pytest.MonkeyPatch, tag: str) -> tuple[HTTPServer, dict[str, Any]]:
    """The documented three OpenAI files (the batch output, its input, and a third file whose
    custom_field2 is `<tag>-<n>`), lines in a different order in each so the join cannot depend on it,
    served by a Files API endpoint the SDK is pointed at. The server (to shut down) and the data_source."""
    output, inputs, other = [], [], []
    for n in (1, 2, 3):
        data = [{"object": "embedding", "index": i, "embedding": vector(n + i / 10)} for i in range(2)]
        response = {"status_code": 200, "body": {"object": "list", "data": data}}
        output.append(
            {"id": f"batch_req_{n}", "custom_id": f"request-{n}", "response": response, "error": None}
        )
        request = {"model": "text-embedding-ada-002", "input": [f"question {n}", f"answer {n}"]}
        inputs.append(
            {"custom_id": f"request-{n}", "method": "POST", "url": "/v1/embeddings", "body": request}
        )
        other.append(
            {"custom_id": f"request-{n}", "custom_field1": f"one-{n}", "custom_field2": f"{tag}-{n}"}
        )
    OpenAIFiles.files = {
        "file-out": "".join(json.dumps(r) + "\n" for r in output).encode(),
        "file-in": "".join(json.dumps(r) + "\n" for r in reversed(inputs)).encode(),
        "file-other": "".join(json.dumps(r) + "\n" for r in (other[1], other[2], other[0])).encode(),
    }
    server = HTTPServer(("127.0.0.1", 0), OpenAIFiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    return server, {"type": "openAI", "source": ["file-out", "file-in", "file-other"]}
