"""The skeleton's user story on the real local runtime: S3 upload -> transform job -> k-NN index."""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from typing import Any

import pytest

from cli.local_search import local_query_embedder
from cli.main import main
from cli.search import semantic_search
from local.aws import session
from local.runtime import AWS_URL, LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client
from tests.integration.helpers import (
    PIPELINES,
    dead_letters,
    sagemaker_model_environment,
    submitted_all,
    upload,
    wait_for_end,
    wait_for_remote_jobs,
)

pytestmark = pytest.mark.integration
PIPELINE = "e2e"
# Its own prefix and index: these tests must never touch the demo's python-docs index.
# Every integration module deploys the same pipelines, so moving between modules never reshapes the stack.


def test_an_upload_ends_in_the_index_with_every_record_accounted_for(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given a file of real records with two bad lines among them
    records = [
        {
            "_id": "e2e-gzip",
            "text": "Open a gzip-compressed file in binary or text mode, returning a file object.",
        },
        {
            "_id": "e2e-thread",
            "text": "A class that represents a thread of control running in the background.",
        },
        {"_id": "e2e-date", "text": "Return the current local date and time as a datetime object."},
    ]
    body = (
        b"\n".join(
            [
                json.dumps(records[0]).encode(),
                b'{"_id": "bad", "text": ',
                json.dumps(records[1]).encode(),
                b'{"text": "no id here"}',
                json.dumps(records[2]).encode(),
            ]
        )
        + b"\n"
    )
    # When it is uploaded to the pipeline's prefix
    job_id = upload(stack, config, f"e2e-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then the job completed and records_in = indexed + dead_lettered
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == ("COMPLETED", 5, 3, 2)
    # And the dead letters say which lines and why
    letters = sorted(dead_letters(stack, job_id), key=lambda letter: letter["line"])
    assert [(letter["line"], letter["stage"]) for letter in letters] == [(2, "parse"), (4, "parse")]
    assert letters[1]["reason"] == "missing id at $._id"
    # And a k-NN query with the same model finds the right document first
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    hits = semantic_search(
        client, config, "decompress a .gz file", k=3, query_vector=local_query_embedder(config)
    )
    assert hits[0].doc_id == "e2e-gzip"


def test_the_same_upload_twice_is_one_job(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given a file that has been processed into one execution, one transform job and one document
    marker = f"idempotent{time.time_ns()}"
    body = json.dumps({"_id": f"e2e-{marker}", "text": f"{marker} uploads start one job."}).encode() + b"\n"
    name = f"e2e-once-{time.time_ns()}.jsonl"
    first = upload(stack, config, name, body)
    wait_for_end(jobs, first)
    # When exactly the same bytes are uploaded again under the same key
    second = upload(stack, config, name, body)
    submitted_all(stack)  # S3 -> EventBridge -> SQS runs inside PutObject; then the submit function took it
    # Then the duplicate is the same job, which ran once: one execution, one transform job, one document
    assert second == first
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    executions = sfn.list_executions(stateMachineArn=stack.outputs["StateMachineArn"])["executions"]
    assert [execution["name"] for execution in executions].count(first) == 1
    sagemaker = session().client("sagemaker", endpoint_url=AWS_URL)
    transforms = sagemaker.list_transform_jobs(NameContains=first.rsplit("-", 1)[1])["TransformJobSummaries"]
    assert len(transforms) == 1
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    found = client.count(index=config.sink.index, body={"query": {"match": {"chunk": marker}}})
    assert found["count"] == 1


def test_an_empty_file_completes_with_zero_counts(stack: Any, config: PipelineConfig, jobs: JobTable) -> None:
    # Given an empty upload / When it is processed
    job = wait_for_end(jobs, upload(stack, config, f"e2e-empty-{time.time_ns()}.jsonl", b""))
    # Then the job completes without running inference, and nothing is lost
    assert (job["state"], job["records_in"], job.get("indexed", 0), job.get("dead_lettered", 0)) == (
        "COMPLETED",
        0,
        0,
        0,
    )
    assert "remote_jobs" not in job


def test_a_failed_transform_job_fails_the_job_with_sagemakers_reason(
    stack: Any, config: PipelineConfig, jobs: JobTable
) -> None:
    # Given the pipeline's SageMaker model points at a model folder that does not exist, so the
    # transform job is accepted and then fails while running, as a broken container would
    with model_environment(config, {"OSBATCH_LOCAL_MODEL_DIR": "/nonexistent/model"}):
        # When a file is uploaded
        job_id = upload(stack, config, f"e2e-fail-{time.time_ns()}.jsonl", b'{"_id": "x", "text": "y"}\n')
        job = wait_for_end(jobs, job_id)
    # Then the job is FAILED with the reason SageMaker gave, and its record is not silently dropped
    assert job["state"] == "FAILED"
    assert "/nonexistent/model" in job["reason"]
    assert job["records_in"] == 1


def model_environment(config: PipelineConfig, environment: dict[str, str]) -> AbstractContextManager[None]:
    """The pipeline's SageMaker model with this container environment, restored afterwards."""
    assert config.inference.sagemaker is not None
    return sagemaker_model_environment(config.inference.sagemaker.ModelName, environment)


def test_cancel_stops_the_inference_job_and_the_job_ends_cancelled(
    stack: Any, config: PipelineConfig, jobs: JobTable, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job whose transform is running, held by the model until it is stopped (so it cannot finish
    # before the cancel, however fast the machine)
    with model_environment(config, {"OSBATCH_LOCAL_HOLD_UNTIL_STOPPED": "true"}):
        job_id = upload(
            stack, config, f"e2e-cancel-{time.time_ns()}.jsonl", b'{"_id": "c", "text": "held"}\n'
        )
        wait_for_remote_jobs(jobs, job_id)
        # When the user cancels it
        assert main(["--pipelines", PIPELINES, "cancel", job_id]) == 0
        job = wait_for_end(jobs, job_id)
    # Then the job ends CANCELLED with nothing indexed, and says so
    assert "cancelling" in capsys.readouterr().out
    assert (job["state"], job.get("indexed", 0)) == ("CANCELLED", 0)
    # And cancelling again is refused with the reason
    assert main(["--pipelines", PIPELINES, "cancel", job_id]) == 2
    assert "already ended (CANCELLED)" in capsys.readouterr().err
