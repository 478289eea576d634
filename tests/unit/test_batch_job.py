"""A `_batch_ingestion` request run by the stack: PlanIngest cuts its files, each chunk maps its own file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.batch_ingest import BatchIngestError
from cli.batch_stack import pipeline_for
from infra.batch_ingest import buckets_from_context
from osbatch.batch_ingestion.job import (
    BatchTargetError,
    StagedBatch,
    StagedFile,
    batch_job_id,
    batch_target,
    is_batch_chunk,
)
from osbatch.batch_ingestion.request import parse_batch_request
from osbatch.config import ConfigError, PipelineConfig
from osbatch.contracts import batch_request_key
from osbatch.dal import JobTable
from osbatch.ingest.chunk import ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import BatchIngest, JobState, SourceObject
from osbatch.models.ingest import IngestChunk
from osbatch.steps.plan_ingest import plan_ingest
from osbatch.steps.support.ports import DeployedPipeline
from tests.helpers import OPENAI_BODY
from tests.unit.fake_backend import ScriptedBackend
from tests.unit.fake_opensearch import Cluster, FakeClient
from tests.unit.helpers import job_store, openai_files

JOB = "msmarco-batch-0123456789abcdef"


def staged_request(s3: Any, tmp_path: Path, body: dict[str, Any]) -> JobState:
    """What the CLI leaves: the three files staged in the output bucket and the request naming them."""
    files = []
    for number, path in enumerate(openai_files(tmp_path, [2, 3, 1])):
        key = f"jobs/{JOB}/batch-files/{number:05d}.jsonl"
        s3.put_object(Bucket="osb-out", Key=key, Body=path.read_bytes())
        size = path.stat().st_size
        files.append(StagedFile(bucket="osb-out", key=key, size=size, cited=f"file-{number}", version="v"))
    staged = StagedBatch(request=body, files=files)
    s3.put_object(Bucket="osb-out", Key=batch_request_key(JOB), Body=staged.model_dump_json())
    source = SourceObject(bucket="osb-out", key=batch_request_key(JOB))
    return JobState(
        job_id=JOB, pipeline="msmarco", source=source, batch=BatchIngest(request=source.key, files=3)
    )


def deployed(config: PipelineConfig) -> DeployedPipeline:
    return DeployedPipeline(config, ScriptedBackend(), FakeClient())


def test_the_three_file_example_plans_like_a_job_and_each_chunk_maps_its_own_file(
    config: PipelineConfig, jobs: JobTable, s3: Any, tmp_path: Path
) -> None:
    # Given the documented three-file request, into the pipeline's index, staged by the CLI
    body = {**OPENAI_BODY, "index_name": config.sink.index}
    state = staged_request(s3, tmp_path, body)
    # When PlanIngest runs it, in 150-byte chunks
    planned = plan_ingest(state, pipeline=deployed(config), store=job_store(jobs, s3), chunk_bytes=150)
    # Then the plan covers every file, each item saying which file it reads, and the job is INGESTING
    assert planned.plan is not None
    items = json.loads(s3.get_object(Bucket="osb-out", Key=planned.plan.key)["Body"].read())
    assert planned.plan.chunks == len(items) > 3 and planned.plan.objects == 3
    assert sorted({item["file"] for item in items}) == [0, 1, 2]
    assert (jobs.get(JOB) or {})["state"] == "INGESTING"
    # And when the Map's chunks run, the files join into the documented documents
    cluster = Cluster()
    staged = StagedBatch.model_validate_json(
        s3.get_object(Bucket="osb-out", Key=batch_request_key(JOB))["Body"].read()
    )
    lines = 0
    for item in items:
        chunk = IngestChunk(job_id=JOB, pipeline="msmarco", source=state.source, **item)
        assert is_batch_chunk(chunk.source.bucket, chunk.source.key, JOB, "osb-out")
        result = ingest_chunk(
            chunk,
            target=batch_target(staged, chunk.file, config),
            s3=s3,
            opensearch=cluster,
            dead_letters=lambda segment: DeadLetterWriter(s3, "osb-dlq", "d", job_id=JOB, source="x"),
        )
        lines += result.lines
    assert lines == 9 and sorted(cluster.docs) == ["request-1", "request-2", "request-3"]
    assert cluster.docs["request-2"]["custom_field1"] == "f1-2"
    assert cluster.docs["request-2"]["question_embedding"] == [2.0, 0.5]


def test_a_request_for_another_index_than_the_pipelines_is_refused(
    config: PipelineConfig, jobs: JobTable, s3: Any, tmp_path: Path
) -> None:
    # Given a request naming an index no deployed function may write
    state = staged_request(s3, tmp_path, {**OPENAI_BODY, "index_name": "elsewhere"})
    # When it is planned, then it fails, saying which index the pipeline may write
    with pytest.raises(BatchTargetError, match=f"is not pipeline 'msmarco''s index '{config.sink.index}'"):
        plan_ingest(state, pipeline=deployed(config), store=job_store(jobs, s3), chunk_bytes=150)
    # And it is a job of its pipeline all the same, for FailJob to record the failure on
    assert (jobs.get(JOB) or {})["pipeline"] == "msmarco"


def test_the_cli_runs_a_request_under_the_pipeline_of_its_index(config: PipelineConfig) -> None:
    # Given the deployed pipelines and a request naming one's index
    request = parse_batch_request({**OPENAI_BODY, "index_name": config.sink.index})
    # Then that pipeline runs it, a named one must exist, and an index no pipeline writes is refused
    assert pipeline_for(request, [config], None) is config
    assert pipeline_for(request, [config], "msmarco") is config
    with pytest.raises(BatchIngestError, match="no pipeline named 'other'"):
        pipeline_for(request, [config], "other")
    elsewhere = parse_batch_request({**OPENAI_BODY, "index_name": "elsewhere"})
    with pytest.raises(BatchIngestError, match="no pipeline writes index 'elsewhere'"):
        pipeline_for(elsewhere, [config], None)


def test_the_allowed_source_buckets_are_names_never_wildcards() -> None:
    assert buckets_from_context("offlinebatch, other-bucket") == ["offlinebatch", "other-bucket"]
    assert buckets_from_context(["offlinebatch"]) == ["offlinebatch"] and buckets_from_context(None) == []
    with pytest.raises(ConfigError, match=r"\* is not a bucket name"):
        buckets_from_context("offlinebatch,*")


def test_the_job_id_is_the_same_for_the_same_request_and_file_versions_only() -> None:
    # Given a request over two file versions
    files = [("s3://b/out.jsonl", 10, "etag-1")]
    first = batch_job_id("msmarco", OPENAI_BODY, files)
    # Then a re-run is the same job, and a changed file or body is another
    assert batch_job_id("msmarco", json.loads(json.dumps(OPENAI_BODY)), files) == first
    assert batch_job_id("msmarco", OPENAI_BODY, [("s3://b/out.jsonl", 10, "etag-2")]) != first
    assert batch_job_id("msmarco", {**OPENAI_BODY, "ingest_fields": []}, files) != first
    assert first.startswith("msmarco-batch-")


def test_a_batch_ingest_bucket_may_name_its_owners_account() -> None:
    # Given bucket:account entries
    # Then a 12-digit account is kept with its bucket, anything else after the colon is refused
    assert buckets_from_context("offlinebatch:444455556666") == ["offlinebatch:444455556666"]
    with pytest.raises(ConfigError, match="bucket:account"):
        buckets_from_context("offlinebatch:partner")
