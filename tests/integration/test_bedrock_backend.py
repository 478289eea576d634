"""The bedrock backend on the real local runtime: S3 upload -> Bedrock batch job (emulated) -> k-NN index."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from cli.local_search import local_query_embedder
from cli.search import semantic_search
from local.aws import session
from local.runtime import AWS_URL, LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client
from tests.integration.helpers import (
    PIPELINES,
    TOPICS,
    dead_letters,
    pipeline_configs,
    set_faults,
    upload,
    wait_for_end,
    wait_for_remote_jobs,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
PIPELINE = "e2e-bedrock"


def test_a_partially_completed_job_indexes_the_rest_and_dead_letters_the_failed_records(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given Bedrock's minimum of 100 records per job, 120 records, and the model failing two of them
    set_faults(fail_records_containing="POISON")
    records = [{"_id": f"bedrock-{name}", "text": text} for name, text in TOPICS]
    records += [{"_id": f"bedrock-filler-{n}", "text": f"Filler passage number {n}."} for n in range(115)]
    records.insert(10, {"_id": "bedrock-bad-1", "text": "POISON one"})
    records.insert(50, {"_id": "bedrock-bad-2", "text": "POISON two"})
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    # When the file is uploaded
    job_id = upload(stack, config, f"bedrock-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then the job is PARTIALLY_COMPLETED (not COMPLETED) with every record accounted for
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == (
        "PARTIALLY_COMPLETED",
        120,
        118,
        2,
    )
    assert "2 of 120 records failed" in job["reason"]
    # And the dead letters are at stage inference, cite the source lines and carry Bedrock's error
    letters = sorted(dead_letters(stack, job_id), key=lambda letter: letter["line"])
    assert [(letter["line"], letter["stage"]) for letter in letters] == [(11, "inference"), (51, "inference")]
    assert [letter["record"]["_id"] for letter in letters] == ["bedrock-bad-1", "bedrock-bad-2"]
    assert letters[0]["reason"].startswith("400: ")
    # And the documents have their own ids, text and vectors: a k-NN query finds the right one first
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    hits = semantic_search(
        client, config, "decompress a .gz file", k=3, query_vector=local_query_embedder(config)
    )
    assert hits[0].doc_id == "bedrock-gzip"


def test_a_job_too_small_for_bedrock_fails_with_the_reason(
    stack: Any, config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a file below Bedrock's minimum records per job
    body = b"".join(json.dumps({"_id": f"small-{n}", "text": f"t {n}"}).encode() + b"\n" for n in range(3))
    # When it is uploaded
    job_id = upload(stack, config, f"bedrock-small-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then the job FAILED with Bedrock's validation message and nothing was indexed
    assert (job["state"], job["indexed"]) == ("FAILED", 0)
    assert "at least 100 records" in job["reason"]


@pytest.mark.parametrize("pipeline", ["e2e-bedrock", "e2e-openai"])
def test_osbatch_cancel_stops_a_bedrock_or_openai_job(
    stack: Any, jobs: JobTable, pipeline: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    # Given a job whose remote job stays in progress
    config = pipeline_configs()[pipeline]
    set_faults(hold_jobs=True)
    body = b"".join(json.dumps({"_id": f"held-{n}", "text": f"t {n}"}).encode() + b"\n" for n in range(100))
    job_id = upload(stack, config, f"held-{time.time_ns()}.jsonl", body)
    wait_for_remote_jobs(jobs, job_id)
    # When the user cancels it
    assert main(["--pipelines", PIPELINES, "cancel", job_id]) == 0
    job = wait_for_end(jobs, job_id)
    # Then it ends CANCELLED with nothing indexed
    assert "cancelling" in capsys.readouterr().out
    assert (job["state"], job.get("indexed", 0)) == ("CANCELLED", 0)


def test_a_job_past_its_timeout_is_expired_and_stopped(stack: Any, jobs: JobTable) -> None:
    # Given a pipeline whose timeout_hours is seconds, and a Bedrock job that stays in progress
    config = pipeline_configs()["e2e-expiry"]
    set_faults(hold_jobs=True)
    body = b"".join(json.dumps({"_id": f"slow-{n}", "text": f"t {n}"}).encode() + b"\n" for n in range(100))
    # When it is uploaded and the deadline passes
    job_id = upload(stack, config, f"slow-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then the job is EXPIRED with the reason, and the remote job was stopped rather than left running
    assert job["state"] == "EXPIRED" and "timeout_hours" in job["reason"]
    bedrock = session().client("bedrock", endpoint_url=AWS_URL)
    assert bedrock.get_model_invocation_job(jobIdentifier=job["remote_jobs"][0]["arn"])["status"] in {
        "Stopping",
        "Stopped",
    }
    # And no record is unaccounted: the 100 valid records are one file-level dead letter with the reason
    assert (job["records_in"], job["indexed"], job["dead_lettered"], job["unaccounted"]) == (100, 0, 100, 0)
    (letter,) = dead_letters(stack, job_id)
    assert (letter["stage"], letter["reason"]) == ("inference", job["reason"])
    assert letter["record"]["records"] == 100 and letter["record"]["file"].endswith(".jsonl")
