"""Fixtures of the unit tests: a pipeline config, moto, and the job table and buckets on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.dal import JobTable
from tests.unit.helpers import create_job_table, pipeline_dict


@pytest.fixture
def config() -> PipelineConfig:
    return parse_pipeline(pipeline_dict())


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def jobs(aws: None) -> JobTable:
    return JobTable(create_job_table())


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    for bucket in ("osb-in", "osb-out", "osb-dlq"):
        client.create_bucket(Bucket=bucket)
    return client


# The stack outputs the CLI reads, naming the unit tests' buckets and job table (tests/unit/helpers.py).
CLI_OUTPUTS = {
    "InputBucketName": "osb-in",
    "OutputBucketName": "osb-out",
    "DeadLetterBucketName": "osb-dlq",
    "JobTableName": "jobs",
}


@pytest.fixture
def cli_target(jobs: JobTable, s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's commands act on moto's buckets and job table, never on a local runtime that may be up."""
    from cli.target import Target

    target = Target("test", None, dict(CLI_OUTPUTS), session=boto3.session.Session(region_name="us-east-1"))
    monkeypatch.setattr("cli.target.resolve_target", lambda: target)
    return target
