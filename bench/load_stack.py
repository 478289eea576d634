"""`osbatch batch-ingest --stack` under load, and the deployed load pipelines it runs on.

LoadStack deploys bench/pipelines/*.yaml on the running local runtime (moto's Step Functions runs the
synthesized state machine; every function runs in its sandbox; the documents go to the real node) and
holds the clients the load runs read it with.

run_batch_stack writes N records with precomputed vectors (bench/load_data.py), runs the request through
the CLI's own code path (cli/batch_stack.run_on_stack: hash, stage the file in the output bucket, start the
execution, follow it), and measures the execution (PlanIngest, the Distributed Map of ingest-chunk
functions, Finalize) apart from the CLI's staging.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from bench.load_accounting import Conservation, conserve, sample_vectors_match
from bench.load_data import vector_lines, vector_of, write_lines
from bench.load_memory import LogWindow, MemoryUse, function_named_by_handler
from cli.batch_stack import run_on_stack
from cli.report_data import state_spans
from local.aws import session
from local.deploy import deploy_local, load_pipelines
from local.runtime import AWS_URL, LocalRuntime
from osbatch.batch_ingestion.request import parse_batch_request
from osbatch.config import PipelineConfig
from osbatch.contracts import dead_letter_prefix
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client

PIPELINES = "bench/pipelines/load-*.yaml"
VECTOR_PIPELINE = "load-vectors"
VECTOR_FIELD = "vector"
INGEST_CHUNK_HANDLER = "osbatch.handlers.ingest_chunk.handler"
SAMPLE = 50  # documents whose vectors are compared with their records', spread over the file


class LoadStack:
    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.configs: dict[str, PipelineConfig] = {c.name: c for c in load_pipelines(PIPELINES)}
        self.stack = deploy_local(PIPELINES, opensearch_url=runtime.opensearch.url, progress=lambda _: None)
        self.s3: Any = session().client("s3", endpoint_url=AWS_URL)
        self.stepfunctions: Any = session().client("stepfunctions", endpoint_url=AWS_URL)
        self.lambdas: Any = session().client("lambda", endpoint_url=AWS_URL)
        self.jobs = JobTable(
            session().resource("dynamodb", endpoint_url=AWS_URL).Table(self.stack.outputs["JobTableName"])
        )
        # A folder and file names of this run's own: the same bytes under the same name are the same job.
        self.run = f"run-{uuid.uuid4().hex[:8]}"

    @cached_property
    def client(self) -> Any:
        return opensearch_client(self.runtime.opensearch.url, timeout=600)

    def fresh_index(self, index: str) -> None:
        """Each run starts without the index: PlanIngest (or Prepare) creates it from the mapping."""
        self.client.indices.delete(index=index, ignore_unavailable=True)

    def ingest_memory(self) -> LogWindow:
        function = function_named_by_handler(self.lambdas, INGEST_CHUNK_HANDLER)
        return LogWindow(function["FunctionName"], int(function["MemorySize"]))

    def history(self, execution: str) -> list[dict[str, Any]]:
        pages = self.stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution)
        return [event for page in pages for event in page["events"]]

    def dead_letters(self, job_id: str) -> list[dict[str, Any]]:
        bucket = self.stack.outputs["DeadLetterBucketName"]
        letters = []
        listing = self.s3.get_paginator("list_objects_v2")
        pages = listing.paginate(Bucket=bucket, Prefix=dead_letter_prefix(job_id))
        for page in pages:
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                letters += [json.loads(line) for line in body.splitlines() if line.strip()]
        return letters


@dataclass(frozen=True)
class StackRun:
    records: int
    dim: int
    file_bytes: int
    cli_seconds: float  # the whole `batch-ingest --stack`: hash, stage, execution
    execution_seconds: float  # the execution alone: PlanIngest, the Map, Finalize
    map_seconds: float  # the Distributed Map (IngestChunks) alone
    chunks: int
    conservation: Conservation
    vectors_wrong: list[str]
    memory: MemoryUse

    @property
    def rate(self) -> float:
        """Documents per second of the execution: the stack's ingest path, without the CLI's staging."""
        return self.records / self.execution_seconds

    def describe(self) -> list[str]:
        m = self.memory
        return [
            f"batch-ingest --stack, {self.records} records "
            f"({self.dim}-dim, {self.file_bytes / 2**20:.0f} MiB): "
            f"{self.rate:.0f} docs/s over the execution ({self.execution_seconds:.0f} s; the Map "
            f"{self.map_seconds:.0f} s, {self.chunks} chunks); the CLI in all {self.cli_seconds:.0f} s",
            f"  conservation: {self.conservation.describe()}; "
            f"sampled vectors wrong: {len(self.vectors_wrong)}",
            *[f"    {example}" for example in self.conservation.examples],
            f"  ingest-chunk: {m.invocations} invocations, peak {m.peak_mb} MB of {m.configured_mb} MB"
            + (f", {m.killed} killed past their memory size" if m.killed else ""),
        ]


def run_batch_stack(load: LoadStack, records: int, dim: int, work: Path, say: Any = print) -> StackRun:
    config = load.configs[VECTOR_PIPELINE]
    path = work / f"{load.run}-vectors-{records}.jsonl"
    size = write_lines(path, vector_lines(records, dim))
    load.fresh_index(config.sink.index)
    body = {
        "index_name": config.sink.index,
        "field_map": {"_id": "$._id", VECTOR_FIELD: f"$.{VECTOR_FIELD}"},
        "data_source": {"type": "file", "source": [str(path)]},
    }
    memory = load.ingest_memory()
    began = time.monotonic()
    report = run_on_stack(
        body,
        parse_batch_request(body),
        config,
        outputs=load.stack.outputs,
        s3=load.s3,
        stepfunctions=load.stepfunctions,
        jobs=load.jobs,
        scratch=work / "scratch",
        say=lambda line: say(f"  {time.strftime('%H:%M:%S')} {line}"),
    )
    cli_seconds = time.monotonic() - began
    path.unlink()  # staged in the output bucket by now; the sample is regenerated, not read back
    execution = load.stepfunctions.describe_execution(
        executionArn=load.stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:", 1)
        + f":{report.run_id}"
    )
    history = load.history(execution["executionArn"])
    spans = [span for span in state_spans(history, execution["startDate"]) if span.name == "IngestChunks"]
    letters = load.dead_letters(report.run_id)
    conservation = conserve(load.client, config.sink.index, records, letters)
    sample = sorted({records * n // SAMPLE for n in range(SAMPLE)} | {records - 1})
    wrong = sample_vectors_match(
        load.client, config.sink.index, VECTOR_FIELD, sample, lambda n: vector_of(n, dim)
    )
    return StackRun(
        records=records,
        dim=dim,
        file_bytes=size,
        cli_seconds=cli_seconds,
        execution_seconds=(execution["stopDate"] - execution["startDate"]).total_seconds(),
        map_seconds=sum(span.end - span.start for span in spans),
        chunks=report.chunks,
        conservation=conservation,
        vectors_wrong=wrong,
        memory=memory.read(),
    )
