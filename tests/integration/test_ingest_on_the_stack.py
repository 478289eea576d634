"""Ingestion on the deployed stack in the local runtime: moto executes the synthesized state machine, and
every function is our real handler in its sandbox.

- `osbatch batch-ingest --stack` with the three-file OpenAI example of OpenSearch's "Asynchronous batch
  ingestion" API page (no credential block), and
  its re-run, which starts nothing new;
- an ingest chunk killed by its Lambda timeout mid-way, retried by the Map, resuming from its checkpoint;
- records the model service silently drops (OpenAI, SageMaker), dead-lettered by diffing line numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from cli.batch_stack import run_on_stack
from local.aws import session
from local.aws.sandbox.logs import log_file
from local.runtime import AWS_URL, LocalRuntime
from osbatch.batch_ingestion.request import parse_batch_request
from osbatch.config import PipelineConfig
from osbatch.contracts import plan_key, plan_name
from osbatch.dal import JobTable
from tests.helpers import OPENAI_BODY
from tests.integration.helpers import (
    TOPICS,
    dead_letters,
    faults,
    serve_openai_example,
    set_faults,
    upload,
    vector,
    wait_for_end,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
INGEST_CHUNK_HANDLER = "osbatch.handlers.ingest_chunk.handler"
KILL_TIMEOUT_SECONDS = 15  # the ingest-chunk function's Timeout during the kill test (900 when deployed)
FRESH: tuple[str, ...] = ()  # the batch fixture empties its own index


@pytest.fixture
def client(runtime: LocalRuntime) -> OpenSearch:
    return OpenSearch(hosts=[runtime.opensearch.url], timeout=60)


@pytest.fixture
def batch(configs: dict[str, PipelineConfig], client: OpenSearch) -> Iterator[PipelineConfig]:
    """The pipeline batch requests run under, its index gone: PlanIngest creates it from the mapping."""
    config = configs["e2e-batch"]
    client.indices.delete(index=config.sink.index, ignore_unavailable=True)
    yield config
    client.indices.delete(index=config.sink.index, ignore_unavailable=True)


def on_stack(stack: Any, jobs: JobTable, body: dict[str, Any], config: PipelineConfig, scratch: Path) -> Any:
    said: list[str] = []
    report = run_on_stack(
        body,
        parse_batch_request(body),
        config,
        outputs=stack.outputs,
        s3=session().client("s3", endpoint_url=AWS_URL),
        stepfunctions=session().client("stepfunctions", endpoint_url=AWS_URL),
        jobs=jobs,
        scratch=scratch,
        say=said.append,
        sleep=lambda seconds: time.sleep(0.2),
    )
    return report, said


def test_the_three_file_openai_example_runs_on_the_stacks_map_and_a_rerun_starts_nothing(
    stack: Any, jobs: JobTable, batch: PipelineConfig, client: OpenSearch, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given the documented OpenAI output, its input and a third file, lines in different orders, served by
    # a Files API endpoint; the third file differs from any earlier run's, so this is a new job
    run = time.time_ns()
    server, files = serve_openai_example(monkeypatch, tag=str(run))
    request = {**OPENAI_BODY, "index_name": batch.sink.index, "data_source": files}

    # When it runs on the stack, and then runs again
    try:
        report, said = on_stack(stack, jobs, request, batch, tmp_path / "first")
        again, said_again = on_stack(stack, jobs, request, batch, tmp_path / "again")
    finally:
        server.shutdown()

    # Then the Map ingested the 9 lines into 3 documents holding the fields of their three lines
    assert (report.records_in, report.indexed, report.dead_lettered) == (9, 9, 0)
    job = jobs.get(report.run_id) or {}
    assert (job["state"], job["unaccounted"], job["pipeline"]) == ("COMPLETED", 0, "e2e-batch")
    client.indices.refresh(index=batch.sink.index)
    assert client.count(index=batch.sink.index)["count"] == 3
    doc = client.get(index=batch.sink.index, id="request-2")["_source"]
    assert (doc["question"], doc["answer"], doc["custom_field1"], doc["custom_field2"]) == (
        "question 2", "answer 2", "one-2", f"{run}-2",
    )  # fmt: skip
    assert doc["answer_embedding"][0] == pytest.approx(2.1)
    # And progress was printed while it ran, then the counts
    assert any(" chunks: " in line for line in said)
    assert said[-1].startswith("done: 9 records in, 9 indexed, 0 dead-lettered (COMPLETED)")
    # And the re-run is the same job: no new execution, the same report, no document twice
    assert again.run_id == report.run_id
    assert any("already ran" in line for line in said_again)
    assert (again.records_in, again.indexed) == (9, 9)
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    runs = sfn.list_executions(stateMachineArn=stack.outputs["StateMachineArn"])["executions"]
    assert [run["name"] for run in runs].count(report.run_id) == 1
    assert client.count(index=batch.sink.index)["count"] == 3


@pytest.fixture
def short_chunk_timeout(stack: Any) -> Iterator[str]:
    """The ingest-chunk function with a Timeout a held checkpoint save outlasts, restored afterwards."""
    lambdas = session().client("lambda", endpoint_url=AWS_URL)
    (function,) = [f for f in lambdas.list_functions()["Functions"] if f["Handler"] == INGEST_CHUNK_HANDLER]
    name = function["FunctionName"]
    lambdas.update_function_configuration(FunctionName=name, Timeout=KILL_TIMEOUT_SECONDS)
    yield name
    lambdas.update_function_configuration(FunctionName=name, Timeout=function["Timeout"])


def timeouts(function: str) -> int:
    """How many of the function's invocations its sandbox killed at the timeout (its local log file)."""
    path = log_file(function)
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return text.count(f"Task timed out after {KILL_TIMEOUT_SECONDS:.2f} seconds")


def test_a_chunk_killed_by_its_timeout_resumes_from_its_checkpoint_losing_and_duplicating_nothing(
    stack: Any, jobs: JobTable, batch: PipelineConfig, client: OpenSearch, tmp_path: Path,
    short_chunk_timeout: str,
) -> None:  # fmt: skip
    # Given 8 records in one file (one chunk), a checkpoint after every record (sink.bulk.checkpoint_bytes),
    # and the chunk's third checkpoint save held, so the first attempt hangs after indexing record 3 until
    # its Lambda timeout kills the sandbox
    path = tmp_path / "vectors.jsonl"
    run = time.time_ns()  # a new file, so a new job, whatever ran before in this runtime
    rows = [{"_id": f"kill-{n}", "vector": vector(n / 10), "run": run} for n in range(1, 9)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    request = {
        "index_name": batch.sink.index,
        "field_map": {"_id": "$._id", "question_embedding": "$.vector"},
        "data_source": {"type": "file", "source": [str(path)]},
    }
    set_faults(hold_checkpoint_save=3)
    killed_before = timeouts(short_chunk_timeout)

    # When the request runs on the stack
    report, _ = on_stack(stack, jobs, request, batch, tmp_path / "scratch")

    # Then the attempt was killed mid-chunk by its timeout, and the Map's retrier ran the chunk again
    assert timeouts(short_chunk_timeout) == killed_before + 1  # exactly one attempt was killed
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    (run,) = [
        r
        for r in sfn.list_executions(stateMachineArn=stack.outputs["StateMachineArn"])["executions"]
        if r["name"] == report.run_id
    ]
    assert run["status"] == "SUCCEEDED"
    # And the retry resumed: the checkpoints let through only move forward, one per record, none twice (a
    # restart from the chunk's start would save the first two again)
    saved = faults()["checkpoints"]
    assert len(saved) == len(rows) and saved == sorted(set(saved))
    # And nothing is lost or duplicated: 8 documents with exactly the ids, the chunk counted 8 lines once
    assert (report.records_in, report.indexed, report.dead_lettered) == (8, 8, 0)
    job = jobs.get(report.run_id) or {}
    assert (job["state"], job["unaccounted"], job["chunks"]) == ("COMPLETED", 0, 1)
    tally = jobs.chunk_totals(report.run_id, 1)
    assert (tally.counts.lines, tally.counts.indexed, tally.reported) == (8, 8, frozenset({0}))
    client.indices.refresh(index=batch.sink.index)
    assert client.count(index=batch.sink.index)["count"] == 8
    versions = {
        hit["_id"]: hit["_version"]
        for hit in client.search(index=batch.sink.index, body={"version": True, "size": 20})["hits"]["hits"]
    }
    assert sorted(versions) == sorted(row["_id"] for row in rows)
    # And only the record indexed between the last saved checkpoint and the kill was written twice
    assert versions == {**{row["_id"]: 1 for row in rows}, "kill-3": 2}
    # And the plan was the one chunk the Map ran
    s3 = session().client("s3", endpoint_url=AWS_URL)
    plan = s3.get_object(Bucket=stack.outputs["OutputBucketName"], Key=plan_key(report.run_id, plan_name(0)))[
        "Body"
    ]
    assert len(json.loads(plan.read())) == 1


# OpenAI's output is diffed as PlanIngest joins it onto its records; SageMaker's carries its records and is
# diffed at Finalize, once the chunks' counts come up short (steps/support/dropped.py).
@pytest.mark.parametrize("pipeline", ["e2e-openai", "e2e"])
def test_records_the_service_silently_drops_are_dead_lettered_so_nothing_is_unaccounted(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, pipeline: str
) -> None:
    # Given the service loses one record of four: neither a result nor an error for it
    config = configs[pipeline]
    set_faults(drop_records_containing="VANISHES")
    records = [{"_id": f"drop-{name}", "text": text} for name, text in TOPICS]
    records.insert(2, {"_id": "drop-lost", "text": "this one VANISHES"})
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    # When the file is uploaded and the job runs
    job = wait_for_end(jobs, upload(stack, config, f"drop-{time.time_ns()}.jsonl", body))
    # Then the lost record is a dead letter with its line and the reason, and every record is accounted for
    assert (job["records_in"], job["indexed"], job["dead_lettered"], job["unaccounted"]) == (4, 3, 1, 0)
    assert job["state"] == "PARTIALLY_COMPLETED" and "missing from the model output" in job["reason"]
    (letter,) = dead_letters(stack, job["job_id"])
    assert (letter["line"], letter["stage"], letter["record"]["_id"]) == (3, "inference", "drop-lost")
    assert letter["reason"].startswith("missing from model output")
    assert letter["record"] == records[2]  # as the user wrote it
