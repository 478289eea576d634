"""The throughput part of bench/long_documents.py: records through the pipeline's per-passage path, and the
raw model on the same passages.

The pipeline side runs the workflow steps' own code in this process, on the adapters the unit tests use
(moto's S3 and DynamoDB with the job table of tests/unit/helpers.py, the in-memory OpenSearch of
tests/unit/fake_opensearch.py), from the uploaded file to the joined records ingest reads:

- Prepare (steps/prepare.py): read and validate each line, chunk the text with the pipeline's Chunker (its
  tokenizer.json counter), write one input line per passage and the source record into the parts;
- StartJob, then WaitForJob and PollJob: the SageMaker backend submits the Batch Transform job to the local
  emulator (local.emulators.install, on the embedder given, so both sides run the same model object), with
  the pipeline's own transform settings (input filter, MultiRecord, join). As the workflow's WaitForJob
  is woken by the job's end event, the bench waits on the emulator's own end of the job (no status calls
  while it runs: polling moto every fraction of a second would put the bench's own loop on the CPU being
  measured, where the workflow's waits cost nothing); then PollJob sees it finished, once;
- PlanIngest (steps/plan_ingest.py): the join of every passage's vector back to its record
  (steps/support/passage_join.py) and the ingest plan.

Ingest into the index is not in it: bench/ingest.py measures that (and bench/ingest_node.py on the node).
Every joined record is checked: its passages are the chunker's, in order, and each vector matches the raw
model's (cosine >= MIN_COSINE); a fast pipeline that loses, reorders or garbles passages does not pass.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from osbatch.chunking import Chunker
from osbatch.config import PipelineConfig
from osbatch.models import JobState, JobStateName, SourceObject

REGION = "us-east-1"
INPUT_BUCKET, OUTPUT_BUCKET, DEAD_LETTER_BUCKET = (
    "osb-in",
    "osb-out",
    "osb-dlq",
)  # as the unit tests name them
JOB_ID = "bench-long-1"
MIN_COSINE = 0.999


@dataclass(frozen=True)
class Run:
    passages: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.passages / self.wall_seconds

    @property
    def per_cpu_second(self) -> float:
        return self.passages / self.cpu_seconds


def raw_model_run(embedder: Any, passages: list[str]) -> tuple[Run, np.ndarray]:
    """The model alone on the passages, in one call (it sorts and batches them itself); and its vectors."""
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = embedder.embed(passages)
    return Run(len(passages), time.perf_counter() - wall, time.process_time() - cpu), vectors


def pipeline_run(
    embedder: Any, records: list[dict[str, Any]], config: PipelineConfig, chunker: Chunker, raw: np.ndarray
) -> Run:
    """The records as one uploaded file through Prepare, StartJob, PollJob and PlanIngest; the passages
    counted are those Prepare sent and the join gave back with every vector. raw: the raw model's vectors
    of the chunker's passages, in order, which the joined ones are checked against."""
    import boto3
    from moto import mock_aws

    import local.emulators
    from local.emulators.sagemaker_api import RUNNER
    from osbatch.backends.sagemaker import SageMakerBackend
    from osbatch.dal import JobStore, JobTable
    from osbatch.ingest.dead_letter import DeadLetterWriter
    from osbatch.steps.plan_ingest import plan_ingest
    from osbatch.steps.poll_job import poll_job
    from osbatch.steps.prepare import prepare_job
    from osbatch.steps.start_job import start_job
    from osbatch.steps.support.ports import DeployedPipeline
    from tests.unit.fake_opensearch import FakeClient
    from tests.unit.helpers import create_job_table

    settings = config.inference.sagemaker
    assert settings is not None, f"pipeline {config.name} is not a SageMaker pipeline"
    local.emulators.install(embedder_loader=lambda _folder: embedder)
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            for bucket in (INPUT_BUCKET, OUTPUT_BUCKET, DEAD_LETTER_BUCKET):
                s3.create_bucket(Bucket=bucket)
            sagemaker = boto3.client("sagemaker", region_name=REGION)
            sagemaker.create_model(
                ModelName=settings.ModelName,
                ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                PrimaryContainer={"Image": "local"},
            )
            jobs = JobTable(create_job_table())
            store = JobStore(jobs, s3, output_bucket=OUTPUT_BUCKET, dead_letter_bucket=DEAD_LETTER_BUCKET)
            backend = SageMakerBackend(settings, sagemaker, s3, {"osbatch:pipeline": config.name})
            # The unit tests' in-memory index: duck-typed as the steps' OpenSearch client.
            deployed = DeployedPipeline(config, backend, FakeClient(), chunker)  # type: ignore[arg-type]
            source = SourceObject(bucket=INPUT_BUCKET, key=f"{config.source.prefix}bench.jsonl")
            body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
            s3.put_object(Bucket=source.bucket, Key=source.key, Body=body)
            jobs.create(JOB_ID, config.name, source)
            state = JobState(job_id=JOB_ID, pipeline=config.name, source=source)
            letters = DeadLetterWriter(
                s3, DEAD_LETTER_BUCKET, "bench/prepare.jsonl", job_id=JOB_ID, source="bench"
            )

            wall, cpu = time.perf_counter(), time.process_time()
            state = prepare_job(state, pipeline=deployed, store=store, dead_letters=letters)
            state = start_job(state, config=config, backend=backend, store=store, now=time.time)
            for remote in state.remotes:  # WaitForJob, woken by each remote job's end
                RUNNER.wait(remote.arn)
            state = poll_job(state, config=config, backend=backend, jobs=jobs, now=time.time)
            assert state.status is not None
            if state.status.state is not JobStateName.COMPLETED:
                raise RuntimeError(f"the transform job ended {state.status.state}: {state.status.reason}")
            state = plan_ingest(state, pipeline=deployed, store=store)
            seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu

            assert state.prepared is not None and state.plan is not None
            sent, embedded = state.prepared.passages, state.plan.passages_embedded
            assert sent == embedded, f"{sent} passages sent, {embedded} joined back with their vectors"
            _check(s3, records, chunker, raw)
            return Run(embedded, seconds, cpu_seconds)
    finally:
        local.emulators.uninstall()


def _check(s3: Any, records: list[dict[str, Any]], chunker: Chunker, raw: np.ndarray) -> None:
    """Every record joined whole: its passages the chunker's, in order, each with the raw model's vector."""
    from osbatch.contracts import job_joined_prefix
    from osbatch.record_paths import BOOKKEEPING_KEY

    listing = s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=job_joined_prefix(JOB_ID))["Contents"]
    joined: dict[str, list[dict[str, Any]]] = {}
    for item in listing:
        for line in s3.get_object(Bucket=OUTPUT_BUCKET, Key=item["Key"])["Body"].read().splitlines():
            record = json.loads(line)
            joined[record["_id"]] = record[BOOKKEEPING_KEY]["passages"]
    assert sorted(joined) == sorted(record["_id"] for record in records), "a record was not joined"
    vectors = []
    for record in records:
        expected = [(p.start, p.end, p.text) for p in chunker.passages(record["text"])]
        passages = joined[record["_id"]]
        assert [(p["start"], p["end"], p["text"]) for p in passages] == expected, (
            f"{record['_id']}'s passages"
        )
        vectors += [p["vector"] for p in passages]
    piped = np.asarray(vectors, dtype=np.float32)
    assert piped.shape == raw.shape, f"{len(piped)} vectors joined, {len(raw)} passages cut"
    cosines = np.sum(piped * raw, axis=1) / (np.linalg.norm(piped, axis=1) * np.linalg.norm(raw, axis=1))
    assert float(cosines.min()) >= MIN_COSINE, f"a pipeline vector differs from the model's: {cosines.min()}"
