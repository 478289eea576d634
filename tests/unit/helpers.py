"""Helpers the unit tests share: pipeline configs, events, a job table on moto, and the files they read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from osbatch.backends.base import InputLimits
from osbatch.backends.sagemaker import SageMakerBackend
from osbatch.config import DEPLOYED_PIPELINES_FILE, PipelineConfig, parse_pipeline, pipelines_to_json
from osbatch.dal import JobStore, JobTable
from osbatch.handlers import wiring
from osbatch.models import JobState, SourceObject
from osbatch.steps.prepare import prepare_job
from osbatch.steps.support.ports import DeployedPipeline
from tests.unit.fake_opensearch import FakeClient

REPO = Path(__file__).resolve().parents[2]
# The job the step tests run, and the upload it came from.
JOB = "msmarco-1"
SOURCE = SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl")


def pipeline_dict(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "msmarco",
        "source": {"prefix": "input/msmarco/"},
        "inference": {
            "backend": "sagemaker",
            "max_jobs_in_flight": 2,
            "polling": {"interval_seconds": 60, "max_interval_seconds": 300, "max_failed_polls": 3},
            "sagemaker": {"ModelName": "minilm-embedder"},
        },
        "sink": {
            "opensearch": {"endpoint": "http://127.0.0.1:9200"},
            "index": "msmarco",
            "field_map": {"_id": "$._id", "chunk": "$.text", "chunk_embedding": "$.SageMakerOutput"},
        },
    }
    config.update(overrides)
    return config


# A chunking pipeline's index: one document per record, its passages in a nested field with their vectors.
NESTED_MAPPING: dict[str, Any] = {
    "settings": {"index.knn": True},
    "mappings": {
        "properties": {
            "title": {"type": "keyword"},
            "passages": {
                "type": "nested",
                "properties": {
                    "text": {"type": "text"},
                    "start": {"type": "integer"},
                    "end": {"type": "integer"},
                    "embedding": {"type": "knn_vector", "dimension": 3},
                },
            },
        }
    },
}


def chunking_pipeline_dict(chunking: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """pipeline_dict chunking its records, with the nested mapping a chunking pipeline indexes into."""
    config = pipeline_dict(**overrides)
    config["source"] = {**config["source"], "chunking": chunking}
    if "sink" not in overrides:
        config["sink"] = {
            **config["sink"],
            "mapping": NESTED_MAPPING,
            "field_map": {"_id": "$._id", "title": "$.title"},
        }
    return config


# 20-byte passages, counted in UTF-8 bytes (no tokenizer file needed), at most 5 per record.
CHUNKING_BY_BYTES: dict[str, Any] = {
    "algorithms": [{"fixed_token_length": {"token_limit": 20, "max_chunk_limit": 5}}],
    "tokenizer": "utf8-bytes",
}


def chunking_config() -> PipelineConfig:
    """The unit tests' SageMaker pipeline, chunking by CHUNKING_BY_BYTES into the nested mapping."""
    return parse_pipeline(chunking_pipeline_dict(CHUNKING_BY_BYTES), "test")


def example_pipeline_files() -> list[Path]:
    return sorted((REPO / "pipelines").glob("**/*.yaml"))


def job_store(jobs: JobTable, s3: Any) -> JobStore:
    """The steps' port on the unit tests' job table and buckets (the `s3` fixture creates them)."""
    return JobStore(jobs, s3, output_bucket="osb-out", dead_letter_bucket="osb-dlq")


def object_created(key: str, bucket: str = "osb-in", etag: str = "stale") -> dict[str, Any]:
    """An S3 `Object Created` event as EventBridge delivers it to the submit queue.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
    """
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2024-11-28T10:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 3, "etag": etag, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


@contextmanager
def deployed_handlers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """moto with executing Step Functions, and the handlers' wiring (osbatch.handlers.wiring) set up as a
    deployed stack sets it: one pipeline, the job table (yielded), the buckets' names. The wiring's caches
    are cleared on the way in and out, so no other test sees these clients."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        pipelines_file = tmp_path / DEPLOYED_PIPELINES_FILE
        pipelines_file.write_text(pipelines_to_json([parse_pipeline(pipeline_dict())]))
        monkeypatch.setattr(wiring, "PIPELINES_PATH", pipelines_file)
        table = create_job_table("osbatch-jobs")
        for name, value in {
            "JOB_TABLE": "osbatch-jobs",
            "OUTPUT_BUCKET": "o",
            "DEAD_LETTER_BUCKET": "d",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        wiring._runtime.cache_clear()
        wiring._client.cache_clear()
        try:
            yield table
        finally:
            wiring._runtime.cache_clear()
            wiring._client.cache_clear()


def create_job_table(name: str = "jobs") -> Any:
    """The job table with its by-pipeline index, on whatever moto mock is active."""
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    return dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "job_id", "KeyType": "HASH"},
            {"AttributeName": "item", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "item", "AttributeType": "S"},
            {"AttributeName": "pipeline", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-pipeline",
                "KeySchema": [
                    {"AttributeName": "pipeline", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class FakeContext:
    """The Lambda context object's fields the handlers read."""

    function_name: str = "osbatch-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:osbatch-test"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def openai_files(tmp_path: Path, order: list[int]) -> list[Path]:
    """The OpenAI Batch API output, its input and a third file, lines in the given order."""
    output, inputs, other = [], [], []
    for n in order:
        data = [{"object": "embedding", "index": i, "embedding": [n + 0.1 * i, 0.5]} for i in range(2)]
        output.append({"custom_id": f"request-{n}", "response": {"status_code": 200, "body": {"data": data}}})
        inputs.append({"custom_id": f"request-{n}", "body": {"input": [f"question {n}", f"answer {n}"]}})
        other.append({"custom_id": f"request-{n}", "custom_field1": f"f1-{n}", "custom_field2": n})
    paths = []
    for name, rows in (("output", output), ("input", inputs), ("other", other)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        paths.append(path)
    return paths


def stamped(config: Any, text: str, *, job_id: str, source: str, doc_id: str | None = None) -> dict[str, str]:
    """The document fields Prepare stamps on a record it sends to the model (osbatch.incremental)."""
    from osbatch.contracts import CONFIG_FIELD, FINGERPRINT_FIELD, ID_FIELD, JOB_FIELD, SOURCE_FIELD
    from osbatch.incremental.fingerprint import config_fingerprint, record_fingerprint

    config_print = config_fingerprint(config)
    fingerprint = record_fingerprint(config_print, text)
    return {
        FINGERPRINT_FIELD: fingerprint,
        CONFIG_FIELD: config_print,
        SOURCE_FIELD: source,
        JOB_FIELD: job_id,
        **({ID_FIELD: doc_id} if doc_id is not None else {}),
    }


class ListDeadLetters:
    """Collects dead letters in memory; the S3 writer is tested on its own."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(
        self, *, stage: str, reason: str, record: Any, line: int | None = None, offset: int | None = None
    ) -> None:
        self.items.append({"line": line, "stage": stage, "reason": reason, "record": record})

    def close(self) -> int:
        return len(self.items)


def run_prepare(
    config: PipelineConfig,
    s3: Any,
    jobs: JobTable,
    body: bytes,
    limits: InputLimits | None = None,
    cluster: FakeClient | None = None,
    job_id: str = "msmarco-1",
):  # type: ignore[no-untyped-def]
    """Prepare `body`, uploaded as s3://osb-in/input/msmarco/a.jsonl, on SageMaker: (state, dead letters)."""
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=body)
    state = JobState(
        job_id=job_id,
        pipeline="msmarco",
        source=SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl"),
    )
    jobs.create(job_id, "msmarco", state.source)
    assert config.inference.sagemaker is not None
    backend = SageMakerBackend(config.inference.sagemaker, None, s3, {})
    if limits:
        backend.limits = limits
    dead = ListDeadLetters()
    from osbatch.handlers.wiring import chunker_for  # a chunking pipeline's Chunker, as the handler builds it

    result = prepare_job(
        state,
        pipeline=DeployedPipeline(config, backend, cluster or FakeClient(), chunker_for(config)),
        store=job_store(jobs, s3),
        dead_letters=dead,
    )
    return result, dead
