"""A transform job's model container is a process of its own: killed by a signal mid-job, the job ends Failed
with an AlgorithmError, keeping the output objects it had finished, as SageMaker does."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import local.emulators
from local.emulators.faults import FAULTS
from local.emulators.transform_worker import WORKERS
from tests.helpers import eventually
from tests.local.unit.sagemaker_helpers import (
    BUCKET,
    REGION,
    ROLE,
    output_keys,
    output_lines,
    put_lines,
    start_job,
    wait_for_end,
)


@pytest.fixture
def containers() -> Iterator[tuple[Any, Any]]:
    """moto's SageMaker with each transform job's model in a container process (the packaged MiniLM)."""
    local.emulators.install(model_workers=True)
    FAULTS.reset()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        sagemaker.create_model(ModelName="minilm", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "local"})
        yield s3, sagemaker
    FAULTS.reset()
    local.emulators.uninstall()


def test_a_job_runs_its_model_in_a_container_that_ends_with_it(containers: Any) -> None:
    # Given an input object of three records
    s3, sagemaker = containers
    put_lines(s3, "in/a.jsonl", [{"text": f"record {n}"} for n in range(3)])

    # When a transform job runs to its end
    start_job(sagemaker)
    job = wait_for_end(sagemaker)

    # Then it completed with a vector per record, and no container of it is left running
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert [len(line["SageMakerOutput"]) for line in output_lines(s3, "out/a.jsonl.out")] == [384] * 3
    assert WORKERS.snapshot() == {}


def test_a_container_killed_mid_job_fails_the_job_and_keeps_the_finished_objects(containers: Any) -> None:
    # Given three input objects of two records (one model batch each), and jobs that stand still after
    # two batches, their containers alive
    s3, sagemaker = containers
    for name in ("a", "b", "c"):
        put_lines(s3, f"in/{name}.jsonl", [{"text": f"{name} {n}"} for n in range(2)])
    FAULTS.update(hold_transform_after_batches=2)
    start_job(sagemaker)
    eventually(lambda: FAULTS.transforms_held == 1, what="the job holding after two batches")
    ((_, pid),) = WORKERS.snapshot().items()

    # When its container is killed by SIGKILL, and the job goes on
    os.kill(pid, signal.SIGKILL)
    FAULTS.reset()
    job = wait_for_end(sagemaker)

    # Then the job failed with SageMaker's AlgorithmError, saying how the container ended and where
    assert job["TransformJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("AlgorithmError: See job logs for more information"), reason
    assert f"the model container (pid {pid}) was killed by signal SIGKILL" in reason
    assert f"s3://{BUCKET}/in/c.jsonl" in reason
    # And the two objects finished before the kill are in the output, whole; the third is not
    assert sorted(output_keys(s3)) == ["out/a.jsonl.out", "out/b.jsonl.out"]
    assert [line["text"] for line in output_lines(s3, "out/b.jsonl.out")] == ["b 0", "b 1"]
    assert WORKERS.snapshot() == {}
