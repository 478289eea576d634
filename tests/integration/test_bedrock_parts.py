"""One upload, many Bedrock jobs, on the real local runtime: each remote job's output is ingested as it
finishes, and the job reports one set of counts."""

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
from tests.helpers import eventually
from tests.integration.helpers import dead_letters, set_faults, upload, wait_for_end

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
PIPELINE = "e2e-bedrock-parts"
# The emulator's quotas, the same as the pipeline's (pipelines/e2e-bedrock-parts.yaml).
QUOTAS = {"min_records_per_job": 10, "max_records_per_job": 40}


def body_of(records: list[dict[str, Any]], extra: bytes = b"") -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records) + extra


def remote_jobs(job_id: str) -> list[dict[str, Any]]:
    """The Bedrock jobs the emulator holds for this job (their names derive from the job id)."""
    bedrock = session().client("bedrock", endpoint_url=AWS_URL)
    summaries = bedrock.list_model_invocation_jobs(nameContains=job_id)["invocationJobSummaries"]
    return sorted(summaries, key=lambda job: job["jobName"])


def indexed_ids(runtime: LocalRuntime, index: str, ids: list[str]) -> set[str]:
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=index)
    found = client.search(index=index, body={"query": {"ids": {"values": ids}}, "size": len(ids)})
    return {hit["_id"] for hit in found["hits"]["hits"]}


def test_one_upload_becomes_three_bedrock_jobs_each_ingested_as_it_finishes(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given Bedrock quotas of 10 to 40 records per job, and 85 records: 40 + 40 + 5, which the last job's
    # minimum rebalances to 40 + 35 + 10; the last job is held in progress by its records' marker
    set_faults(**QUOTAS, hold_records_containing="HOLD")
    records = [{"_id": f"parts-{n}", "text": f"Passage {n} about file formats."} for n in range(80)]
    records += [{"_id": f"parts-{n}", "text": f"HOLD passage {n}."} for n in range(80, 85)]
    records[0]["text"] = "Open a gzip-compressed file in binary or text mode, returning a file object."
    # When the file is uploaded
    job_id = upload(stack, config, f"parts-{time.time_ns()}.jsonl", body_of(records))
    # Then three remote jobs are created, named after the job and their index
    created = eventually(lambda: three if len(three := remote_jobs(job_id)) == 3 else None, what="3 jobs")
    assert [job["jobName"][-3:] for job in created] == ["000", "001", "002"]
    # And the first remote job's documents become searchable while the last one is still running
    first = [f"parts-{n}" for n in range(40)]
    eventually(
        lambda: indexed_ids(runtime, config.sink.index, first) == set(first),
        timeout=300,
        what="the first remote job's documents indexed",
    )
    held = remote_jobs(job_id)[2]
    assert held["status"] == "InProgress"
    assert "parts-84" not in indexed_ids(runtime, config.sink.index, ["parts-84"])
    # When the last remote job is let go
    set_faults(hold_records_containing=None)
    job = wait_for_end(jobs, job_id)
    # Then the job reports one set of counts over all three, every record indexed
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"], job["unaccounted"]) == (
        "COMPLETED",
        85,
        85,
        0,
        0,
    )
    assert [summary["status"] for summary in remote_jobs(job_id)] == ["Completed"] * 3
    s3 = session().client("s3", endpoint_url=AWS_URL)
    report = json.loads(
        s3.get_object(Bucket=stack.outputs["OutputBucketName"], Key=f"reports/{job_id}.json")["Body"].read()
    )
    assert (report["records_in"], report["indexed"], len(report["remote_jobs"])) == (85, 85, 3)
    assert indexed_ids(runtime, config.sink.index, [r["_id"] for r in records]) == {r["_id"] for r in records}
    # And the documents are the right ones: a k-NN query finds the gzip passage first
    hits = semantic_search(
        opensearch_client(runtime.opensearch.url),
        config,
        "decompress a .gz file",
        k=3,
        query_vector=local_query_embedder(config),
    )
    assert hits[0].doc_id == "parts-0"


def test_one_failed_bedrock_job_among_three_makes_the_job_partial_with_its_records_dead_lettered(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given 100 valid records in jobs of 40 + 40 + 20 and one malformed line; the model fails every record
    # of the second job, so that Bedrock job FAILS while the other two complete
    set_faults(**QUOTAS, fail_records_containing="POISON")
    records = [{"_id": f"fail-{n}", "text": f"Passage {n}."} for n in range(100)]
    for record in records[40:80]:
        record["text"] = f"POISON {record['text']}"
    # When the file is uploaded
    job_id = upload(stack, config, f"fail-{time.time_ns()}.jsonl", body_of(records, b'{"_id": broken\n'))
    job = wait_for_end(jobs, job_id)
    # Then the job is PARTIALLY_COMPLETED, naming the failed remote job, and every record is accounted for:
    # 60 indexed, the failed job's 40 and the malformed line dead-lettered, none unaccounted
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"], job["unaccounted"]) == (
        "PARTIALLY_COMPLETED",
        101,
        60,
        41,
        0,
    )
    assert "remote job 2 of 3" in job["reason"] and "All 40 records failed" in job["reason"]
    assert [summary["status"] for summary in remote_jobs(job_id)] == ["Completed", "Failed", "Completed"]
    # And the failed job is one file-level dead letter at stage inference that stands for its 40 records
    letters = dead_letters(stack, job_id)
    inference = [letter for letter in letters if letter["stage"] == "inference"]
    assert [(letter["record"]["records"], letter["record"]["prepared_input"]) for letter in inference] == [
        (40, f"s3://{stack.outputs['OutputBucketName']}/jobs/{job_id}/input/job-00001/")
    ]
    assert "All 40 records failed" in inference[0]["reason"]
    assert [letter["stage"] for letter in letters if letter["stage"] != "inference"] == ["parse"]
    # And exactly the records of the other two jobs are in the index
    expected = {f"fail-{n}" for n in [*range(40), *range(80, 100)]}
    assert indexed_ids(runtime, config.sink.index, [r["_id"] for r in records]) == expected
