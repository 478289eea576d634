from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.dal import JobStore, JobTable

REPO = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def config() -> PipelineConfig:
    return parse_pipeline(pipeline_dict())


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def create_job_table(name: str = "jobs") -> Any:
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


@pytest.fixture
def jobs(aws: None) -> JobTable:
    return JobTable(create_job_table())


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    for bucket in ("osb-in", "osb-out", "osb-dlq"):
        client.create_bucket(Bucket=bucket)
    return client


def job_store(jobs: JobTable, s3: Any) -> JobStore:
    """The steps' port on the unit tests' job table and buckets (the `s3` fixture creates them)."""
    return JobStore(jobs, s3, output_bucket="osb-out", dead_letter_bucket="osb-dlq")


def example_pipeline_files() -> list[Path]:
    return sorted((REPO / "pipelines").glob("**/*.yaml"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
