"""Redeploying other pipelines and then a pipeline again keeps its trigger: uploads to it still start jobs.

`make demo`, `make demo BACKEND=openai`, `make demo` deploys pipelines A, then B, then A again; the local
CloudFormation once lost A's EventBridge rule on the way back (local/aws/patches/cloudformation.py).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.aws import session
from local.deploy import deploy_local
from local.runtime import AWS_URL, LocalRuntime
from osbatch.config import PipelineConfig
from tests.integration.helpers import PIPELINES, TOPICS, deploy_stack, job_table, upload, wait_for_end

pytestmark = pytest.mark.integration

PIPELINE = "e2e"
OTHER = "e2e-openai"


def _alone(folder: Path, name: str) -> str:
    """A glob matching one test pipeline's config alone."""
    folder.mkdir()
    shutil.copy(Path(PIPELINES).parent / f"{name}.yaml", folder / f"{name}.yaml")
    return str(folder / "*.yaml")


@pytest.fixture(scope="module")
def redeployed(runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The stack deployed with pipeline A alone, then B alone, then A alone again; the test pipelines'
    whole stack is deployed again afterwards, as the other modules expect it."""
    folder = tmp_path_factory.mktemp("redeploy")
    first, other = _alone(folder / "a", PIPELINE), _alone(folder / "b", OTHER)
    for glob in (first, other, first):
        stack = deploy_local(glob, opensearch_url=runtime.opensearch.url, progress=lambda _: None)
    yield stack
    deploy_stack(runtime)


def _rules_for(stack: Any, pipeline: str) -> list[dict[str, Any]]:
    events = session().client("events", endpoint_url=AWS_URL)
    bucket = stack.outputs["InputBucketName"]
    return [
        rule
        for rule in events.list_rules()["Rules"]
        if f'"{bucket}"' in rule.get("EventPattern", "") and f"input/{pipeline}/" in rule["EventPattern"]
    ]


def test_a_pipeline_deployed_again_keeps_its_trigger(
    redeployed: Any, configs: dict[str, PipelineConfig]
) -> None:
    # Given the stack deployed with A, then B, then A again
    stack = redeployed
    s3 = session().client("s3", endpoint_url=AWS_URL)

    # Then A's rule exists and is enabled in EventBridge, B's is gone, and the bucket still sends events
    [rule] = _rules_for(stack, PIPELINE)
    assert rule["State"] == "ENABLED"
    assert _rules_for(stack, OTHER) == []
    notifications = s3.get_bucket_notification_configuration(Bucket=stack.outputs["InputBucketName"])
    assert "EventBridgeConfiguration" in notifications

    # When a new file is uploaded to A
    records = [{"_id": f"redeploy-{topic}", "text": text} for topic, text in TOPICS]
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    job_id = upload(stack, configs[PIPELINE], f"redeploy-{time.time_ns()}.jsonl", body)

    # Then its job starts and indexes every record
    job = wait_for_end(job_table(stack), job_id)
    assert (job["state"], job["indexed"]) == ("COMPLETED", len(records))
