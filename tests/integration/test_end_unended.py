"""`osbatch end-unended` on the real local runtime: a job whose safety-net event EventBridge could not
deliver (it sits in the rule's dead-letter queue) is ended by the command, its records dead-lettered, its
remote job stopped and its slot given back, and the event leaves the queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cli.exit_codes import ExitCode
from cli.main import main
from local.aws import session
from local.runtime import AWS_URL
from osbatch.config import PipelineConfig
from osbatch.contracts import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE
from osbatch.dal import JobTable
from tests.helpers import eventually
from tests.integration.helpers import (
    dead_letters,
    report,
    stop_held_job,
    wait_for_free_slots,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
PIPELINE = "e2e-bedrock"
RECORDS = 100  # Bedrock's minimum records per job (the emulator's default, as on AWS)


@pytest.fixture
def safety_net_off(stack: Any) -> Iterator[None]:
    """The safety-net rule disabled, as if each delivery to fail-job failed; enabled again afterwards."""
    events = session().client("events", endpoint_url=AWS_URL)
    function = (
        session()
        .client("lambda", endpoint_url=AWS_URL)
        .get_function(FunctionName=stack.outputs["FailJobFunctionName"])
    )
    arn = function["Configuration"]["FunctionArn"]
    (rule,) = events.list_rule_names_by_target(TargetArn=arn)["RuleNames"]
    events.disable_rule(Name=rule)
    try:
        yield
    finally:
        events.enable_rule(Name=rule)


def undelivered(execution: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The event and message attributes EventBridge leaves in the dead-letter queue for an ended execution
    ("Automating Step Functions event delivery with EventBridge"; "Using dead-letter queues to process
    undelivered events in EventBridge")."""
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": int(execution["startDate"].timestamp() * 1000),
        "stopDate": int(execution.get("stopDate", datetime.now(UTC)).timestamp() * 1000),
        "input": execution.get("input"),
        "output": None,
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    event = {
        "version": "0",
        "id": f"undelivered-{time.time_ns()}",
        "detail-type": EXECUTION_STATUS_CHANGE,
        "source": EXECUTION_STATUS_SOURCE,
        "account": execution["executionArn"].split(":")[4],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution["executionArn"].split(":")[3],
        "resources": [execution["executionArn"]],
        "detail": detail,
    }
    attributes = {
        "ERROR_CODE": "ERROR_FROM_TARGET",
        "ERROR_MESSAGE": "Requested resource not found",
        "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds",
        "RETRY_ATTEMPTS": "184",
    }
    return json.dumps(event), {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}


def test_a_job_whose_safety_net_event_was_dead_lettered_is_ended_by_the_command(
    stack: Any,
    config: PipelineConfig,
    jobs: JobTable,
    safety_net_off: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a job waiting on its Bedrock job (held in progress), whose execution is then stopped while the
    # safety net cannot reach fail-job
    job_id, remote, arn = stop_held_job(stack, config, jobs, "unended", RECORDS)
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)

    def aborted() -> dict[str, Any] | None:
        found = sfn.describe_execution(executionArn=arn)
        return found if found["status"] == "ABORTED" else None

    execution = eventually(aborted, what="the execution aborted")
    # And its event in the safety net's dead-letter queue, as EventBridge leaves it after its retries
    sqs = session().client("sqs", endpoint_url=AWS_URL)
    queue = stack.outputs["SweepDlqUrl"]
    event, attributes = undelivered(execution)
    sqs.send_message(QueueUrl=queue, MessageBody=event, MessageAttributes=attributes)
    assert jobs.get(job_id)["state"] == "RUNNING"  # type: ignore[index]

    # When the operator lists the un-ended jobs, then ends them
    assert main(["end-unended", "--dry-run"]) == ExitCode.OK
    listing = capsys.readouterr().out
    code = main(["end-unended", "--json"])
    printed = json.loads(capsys.readouterr().out)

    # Then the listing named the job, and the run ended it through fail-job
    assert f"{job_id} (ABORTED execution): un-ended" in listing
    assert code == ExitCode.OK
    assert [(row["job_id"], row["outcome"]) for row in printed] == [(job_id, "ended")]
    # And the job is FAILED, naming the stop, with all its records in one dead letter and a report
    job = jobs.get(job_id)
    assert job is not None and job["state"] == "FAILED" and str(job["reason"]).startswith("ExecutionAborted")
    ended = report(stack, job_id)
    assert (ended["records_in"], ended["indexed"], ended["dead_lettered"], ended["unaccounted"]) == (
        RECORDS,
        0,
        RECORDS,
        0,
    )
    (letter,) = dead_letters(stack, job_id)
    assert letter["record"]["records"] == RECORDS
    # And its Bedrock job was stopped, its slot given back, and the queue is empty
    bedrock = session().client("bedrock", endpoint_url=AWS_URL)
    assert bedrock.get_model_invocation_job(jobIdentifier=remote["arn"])["status"] in {"Stopping", "Stopped"}
    wait_for_free_slots(jobs, config.name)
    counts = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
