"""Helpers shared by the integration tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from local.aws import session
from local.deploy import deploy_local, load_pipelines
from local.runtime import AWS_URL, LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client

T = TypeVar("T")
PIPELINES = str(Path(__file__).parent / "pipelines" / "*.yaml")  # the test pipelines (not the examples)


def pipeline_configs() -> dict[str, PipelineConfig]:
    return {config.name: config for config in load_pipelines(PIPELINES)}


def deploy_stack(runtime: LocalRuntime, *fresh_indices: str) -> Any:
    """The test pipelines' stack on the local runtime; the indices named start empty."""
    client = opensearch_client(runtime.opensearch.url)
    for index in fresh_indices:
        client.indices.delete(index=index, ignore_unavailable=True)
    return deploy_local(PIPELINES, opensearch_url=runtime.opensearch.url, progress=lambda _: None)


def job_table(stack: Any) -> JobTable:
    return JobTable(session().resource("dynamodb", endpoint_url=AWS_URL).Table(stack.outputs["JobTableName"]))


def wait_for_remote_jobs(jobs: JobTable, job_id: str) -> list[dict[str, Any]]:
    """Once StartJob recorded the job's remote jobs: what a cancel needs to find running."""
    found: list[dict[str, Any]] = eventually(
        lambda: (jobs.get(job_id) or {}).get("remote_jobs"), what=f"the remote jobs of {job_id}"
    )
    return found


def eventually(probe: Callable[[], T | None], *, timeout: float = 120.0, what: str = "condition") -> T:
    """Poll until `probe` returns something truthy. The timeout only stops a hung test; no assertion
    depends on how long anything took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def aws_cli(endpoint_url: str, *arguments: str) -> str:
    """Run the aws CLI of this virtualenv against the emulator (with throwaway credentials); its stdout."""
    command = [
        str(Path(sys.executable).with_name("aws")),
        "--endpoint-url",
        endpoint_url,
        "--region",
        "us-east-1",
    ]
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [*command, *arguments], env=environment, capture_output=True, text=True, check=True
    ).stdout
