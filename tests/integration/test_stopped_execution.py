"""The safety net under FailJob on the real local runtime: an execution stopped by an operator
(StopExecution, never a Catch) still ends its job FAILED, its records dead-lettered, its remote job
stopped and its slot given back."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws import session
from local.runtime import AWS_URL
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from tests.integration.helpers import (
    dead_letters,
    report,
    stop_held_job,
    wait_for_end,
    wait_for_free_slots,
)

# every test starts and ends with no faults set
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
PIPELINE = "e2e-bedrock"
RECORDS = 100  # Bedrock's minimum records per job (the emulator's default, as on AWS)


def test_a_stopped_execution_fails_its_job_and_dead_letters_its_records(
    stack: Any, config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a job whose Bedrock job stays in progress (the emulator's hold_jobs), so its execution waits in
    # WaitForJob
    # When an operator stops the execution
    job_id, remote, execution = stop_held_job(stack, config, jobs, "aborted", RECORDS)
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    job = wait_for_end(jobs, job_id)
    # Then the job is FAILED, naming the stop, and its records are all dead-lettered with that reason
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    assert job["state"] == "FAILED" and job["reason"].startswith("ExecutionAborted"), job
    ended = report(stack, job_id)
    assert (ended["records_in"], ended["indexed"], ended["dead_lettered"], ended["unaccounted"]) == (
        RECORDS,
        0,
        RECORDS,
        0,
    )
    (letter,) = dead_letters(stack, job_id)
    assert letter["record"]["records"] == RECORDS and letter["reason"].startswith("ExecutionAborted")
    # And its Bedrock job was stopped rather than left running, and its slot given back
    bedrock = session().client("bedrock", endpoint_url=AWS_URL)
    assert bedrock.get_model_invocation_job(jobIdentifier=remote["arn"])["status"] in {"Stopping", "Stopped"}
    wait_for_free_slots(jobs, config.name)
