"""park-job and wake-job, wired from their environment as in Lambda, against moto's executing Step Functions.

A state machine parks on a real task token (moto's SQS waitForTaskToken integration hands it to the test,
as Lambda's would hand it to park-job) with TimeoutSecondsPath, as WaitForJob does; the events are the
services' documented shapes (osbatch.backends.remote_events cites them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSecondsPath

from local.aws.patches import stepfunctions
from osbatch.dal import JobTable
from osbatch.dal.wakeups import WAKE_PENDING, WAKE_TOKEN
from osbatch.handlers import park_job, wake_job
from osbatch.models import SourceObject
from tests.unit.helpers import FakeContext, deployed_handlers
from tests.unit.parked_workflow import Workflow

JOB_ID = "msmarco-3f2a9c1e0b7d4a55"
REMOTE = f"osb-{JOB_ID}"
LONG_WAIT = 3600  # the poll interval: only an event can end the wait within the test


def sagemaker_event(name: str = REMOTE, status: str = "Completed") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Transform Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-12-01T12:26:13Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"],
        "detail": {
            "TransformJobName": name,
            "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}",
            "TransformJobStatus": status,
            "ModelName": "minilm-embedder",
            "CreationTime": "2026-12-01T12:20:00Z",
            "TransformStartTime": "2026-12-01T12:20:05Z",
            "TransformEndTime": "2026-12-01T12:26:13Z",
            "Tags": {},
        },
    }


def bedrock_event(name: str = REMOTE, status: str = "Completed") -> dict[str, Any]:
    arn = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdefghwxyz"
    return {
        "version": "0",
        "id": "a1b2c3d4",
        "detail-type": "Batch Inference Job State Change",
        "source": "aws.bedrock",
        "account": "123456789012",
        "time": "2026-12-01T12:26:13Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "version": "0.0",
            "accountId": "123456789012",
            "batchJobName": name,
            "batchJobArn": arn,
            "batchModelId": "amazon.titan-embed-text-v2:0",
            "status": status,
            "failureMessage": "",
            "creationTime": "Dec 1, 2026, 12:20:00 PM",
        },
    }


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Workflow, JobTable, Any]]:
    with deployed_handlers(monkeypatch, tmp_path) as table:
        jobs = JobTable(table)
        jobs.create(
            JOB_ID, "msmarco", SourceObject(bucket="in", key="input/msmarco/a.jsonl", etag="e", size=1)
        )
        region = "us-east-1"
        workflow = Workflow(
            boto3.client("stepfunctions", region_name=region), boto3.client("sqs", region_name=region), JOB_ID
        )
        yield workflow, jobs, table


def park(payload: dict[str, Any]) -> str:
    return str(park_job.handler(payload, FakeContext())["outcome"])


def wake(event: dict[str, Any]) -> dict[str, Any]:
    return wake_job.handler(event, FakeContext())


@pytest.mark.parametrize("event", [sagemaker_event, bedrock_event])
def test_a_completion_event_wakes_the_parked_task_at_once(deployed: Any, event: Any) -> None:
    workflow, jobs, _ = deployed
    # Given a job parked in WaitForJob for an hour
    execution, payload = workflow.park()
    assert park(payload) == "recorded"
    assert workflow.is_waiting(execution)
    # When its remote job's completion event arrives
    result = wake(event())
    # Then the task is woken (not timed out), and nothing is left on the job item
    assert result == {"outcome": "woken", "job_id": JOB_ID}
    assert workflow.ended_in(execution) == "Woken"
    item = jobs.get(JOB_ID) or {}
    assert WAKE_TOKEN not in item and WAKE_PENDING not in item


def test_an_event_before_the_token_is_stored_makes_park_resume_at_once(deployed: Any) -> None:
    workflow, jobs, _ = deployed
    # Given a remote job that finished before the workflow parked (the race)
    assert wake(bedrock_event(status="PartiallyCompleted")) == {"outcome": "recorded", "job_id": JOB_ID}
    assert (jobs.get(JOB_ID) or {})[WAKE_PENDING] == {REMOTE}
    # When the workflow parks
    execution, payload = workflow.park()
    # Then park resumes its own task instead of waiting the hour
    assert park(payload) == "woken"
    assert workflow.ended_in(execution) == "Woken"


def test_a_stale_token_is_normal_and_the_next_park_resumes_at_once(deployed: Any) -> None:
    workflow, jobs, _ = deployed
    # Given a parked wait that timed out (the polling fallback ran), its token left on the job item
    execution, payload = workflow.park(wait_seconds=1)
    park(payload)
    assert workflow.ended_in(execution) == "Polled"
    # When the completion event arrives then
    result = wake(sagemaker_event())
    # Then that is no error: the event is recorded for the next wait
    assert result == {"outcome": "recorded", "job_id": JOB_ID}
    assert (jobs.get(JOB_ID) or {})[WAKE_PENDING] == {REMOTE}
    # And the next park resumes at once
    execution, payload = workflow.park()
    assert park(payload) == "woken"
    assert workflow.ended_in(execution) == "Woken"


@pytest.mark.parametrize(
    "event",
    [
        sagemaker_event(name="osb-other-0123456789abcdef"),  # another stack's job, same prefix
        sagemaker_event(name="someone-elses-job"),
        sagemaker_event(status="InProgress"),
        bedrock_event(status="Stopping"),
    ],
)
def test_unknown_jobs_and_non_terminal_states_are_ignored(deployed: Any, event: dict[str, Any]) -> None:
    workflow, jobs, table = deployed
    # Given a parked job
    execution, payload = workflow.park()
    park(payload)
    # When an event arrives for a job this stack does not know, or for a state that is not terminal
    result = wake(event)
    # Then nothing is woken or written, and no item is created for the unknown job
    assert result == {"outcome": "ignored", "job_id": None}
    assert workflow.is_waiting(execution)
    assert WAKE_PENDING not in (jobs.get(JOB_ID) or {})
    assert table.get_item(Key={"job_id": "other-0123456789abcdef", "item": "job"}).get("Item") is None
    wake(sagemaker_event())  # let the execution end


def test_each_finished_remote_job_wakes_the_job_once(deployed: Any) -> None:
    workflow, _, _ = deployed
    # Given a job with two remote jobs, parked
    execution, payload = workflow.park()
    park(payload)
    # When both finish while it is parked
    first = wake(sagemaker_event(name=f"{REMOTE}-p00000"))
    second = wake(sagemaker_event(name=f"{REMOTE}-p00001"))
    # Then the first wakes it, and the second is kept for the next wait, which resumes at once
    assert (first["outcome"], second["outcome"]) == ("woken", "recorded")
    assert workflow.ended_in(execution) == "Woken"
    execution, payload = workflow.park()
    assert park(payload) == "woken"
    assert workflow.ended_in(execution) == "Woken"


def test_the_emulators_clock_scales_the_park_timeout(deployed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow, _, _ = deployed
    # Given the local emulator's Step Functions clock at 1/1000 (local/aws/patches/stepfunctions.py)
    monkeypatch.setattr(TimeoutSecondsPath, "_eval_seconds", stepfunctions._scaled_timeout_seconds_path)
    monkeypatch.setattr(stepfunctions.TimeScale, "factor", 0.001)
    # When a job parks for an hour and no event comes
    execution, payload = workflow.park(wait_seconds=3600)
    park(payload)
    # Then the wait times out (the polling fallback) after the scaled 3.6 s, not the hour
    assert workflow.ended_in(execution) == "Polled"
    waited = workflow.parked_seconds(execution)
    assert 3600 * 0.001 <= waited < 3600
