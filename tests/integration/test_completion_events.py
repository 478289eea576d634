"""Completion noticed at once, on the real local runtime: the emulators' completion events go through the
deployed wake rules to wake-job, which wakes the parked workflow long before its hour-long poll wait ends.
Asserted on the execution history (how WaitForJob ended, how often PollJob ran), not on wall-clock time.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local.aws import session
from local.runtime import AWS_URL
from local.workflow_history import execution_arn, poll_history, wake_rules_disabled
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from tests.integration.helpers import upload, wait_for_end

pytestmark = pytest.mark.integration
# Bedrock's minimum is 100 records per job; SageMaker takes them as well.
RECORDS = 100
FRESH = ("e2e-wake", "e2e-wake-bedrock", "e2e")


def body(tag: str) -> bytes:
    lines = ({"_id": f"{tag}-{n}", "text": f"Passage {n} about {tag}."} for n in range(RECORDS))
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


@pytest.mark.parametrize("pipeline", ["e2e-wake", "e2e-wake-bedrock"])
def test_the_completion_event_starts_ingestion_without_waiting_for_the_poll(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, pipeline: str
) -> None:
    # Given a pipeline that polls its remote job once an hour (36 s on the emulator's clock)
    config = configs[pipeline]
    assert config.inference.polling.interval_seconds == 3600
    # When a file is uploaded and its remote job finishes
    job_id = upload(stack, config, f"wake-{time.time_ns()}.jsonl", body(pipeline))
    job = wait_for_end(jobs, job_id)
    # Then the job is indexed in full
    assert (job["state"], job["indexed"]) == ("COMPLETED", RECORDS)
    # And WaitForJob was woken by the event, never timed out, so PollJob ran once, and saw it finished
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    history = poll_history(sfn, execution_arn(stack.outputs["StateMachineArn"], job_id))
    assert (history.woken, history.timed_out, history.polls) == (1, 0, 1)
    # And nothing is left waiting on the job item
    item = jobs.get(job_id) or {}
    assert "wake_token" not in item and "wake_pending" not in item


def test_with_the_wake_rules_disabled_polling_still_finds_the_job_done(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given the wake rules disabled, and the e2e pipeline polling every minute (0.6 s on the emulator)
    events = session().client("events", endpoint_url=AWS_URL)
    with wake_rules_disabled(events):
        # When a file is uploaded
        job_id = upload(stack, configs["e2e"], f"poll-only-{time.time_ns()}.jsonl", body("poll-only"))
        job = wait_for_end(jobs, job_id)
    # Then the job still completes, every wait ending at its timeout: the polling fallback
    assert (job["state"], job["indexed"]) == ("COMPLETED", RECORDS)
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    history = poll_history(sfn, execution_arn(stack.outputs["StateMachineArn"], job_id))
    assert history.woken == 0 and history.timed_out >= 1 and history.polls == history.timed_out
