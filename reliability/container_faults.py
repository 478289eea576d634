"""Scenario f's fault: a SageMaker transform job's model container killed by a signal mid-transform.

The SageMaker emulator runs each transform job's model in a container process of its own
(local/emulators/transform_worker.py), as the service runs it in a container on the job's instances. The
emulator's `hold_transform_after_batches` fault makes every transform job stand still after that many
model batches, its container alive and idle; the scenario then sends SIGKILL to one job's container and
lets the jobs go on. That job ends as SageMaker ends a job whose container stops answering: Failed, with
an `AlgorithmError` FailureReason, the output objects finished before the kill kept and no others; the
other job, whose container lives, completes.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from osbatch.contracts import remote_job_name
from reliability.sandbox_faults import faults


def held_containers(jobs: int) -> dict[str, int] | None:
    """The transform jobs' container pids by job ARN, once `jobs` of them stand held; None until then."""
    seen = faults()
    workers: dict[str, int] = seen["model_workers"]
    return workers if seen["transforms_held"] >= jobs and len(workers) >= jobs else None


def kill_container(workers: dict[str, int], job_id: str) -> int:
    """SIGKILL to the container of the upload's first remote job; its pid."""
    name = remote_job_name(job_id, 0)
    (pid,) = [pid for arn, pid in workers.items() if arn.endswith(f"/{name}")]
    os.kill(pid, signal.SIGKILL)
    return pid


def failure_reason(sagemaker: Any, job_id: str) -> str:
    """What DescribeTransformJob says of the upload's first remote job."""
    job = sagemaker.describe_transform_job(TransformJobName=remote_job_name(job_id, 0))
    return f"{job['TransformJobStatus']}: {job.get('FailureReason', '')}"
