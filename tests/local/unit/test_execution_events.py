"""The local Step Functions announces each execution's end on the default bus, as Step Functions does, and
the FAILED, TIMED_OUT and ABORTED ones match the safety-net rule's pattern (written out from the AWS page)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.backend import execution as moto_execution

from local.aws.patches import execution_events
from tests.helpers import eventually

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/machine"
# "Automating Step Functions event delivery with EventBridge", the Execution Status Change example.
ENDED = ["FAILED", "TIMED_OUT", "ABORTED"]
DEFINITION = {
    "StartAt": "Choose",
    "TimeoutSeconds": 2,
    "States": {
        "Choose": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
            "Default": "Wait",
        },
        "Broken": {"Type": "Fail", "Error": "JobFailed", "Cause": "The job failed; see its report."},
        "Wait": {"Type": "Wait", "SecondsPath": "$.wait", "End": True},
    },
}


@pytest.fixture
def machine() -> Iterator[dict[str, Any]]:
    """A machine whose executions fail, time out or wait; a rule of the safety net's pattern into a queue."""
    original = moto_execution.BaseExecutionWorkerCommunication.terminated
    execution_events.install()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            sfn = boto3.client("stepfunctions", region_name=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            events = boto3.client("events", region_name=REGION)
            arn = sfn.create_state_machine(name="jobs", definition=json.dumps(DEFINITION), roleArn=ROLE)[
                "stateMachineArn"
            ]
            url = sqs.create_queue(QueueName="ended")["QueueUrl"]
            queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            pattern = {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"status": ENDED, "stateMachineArn": [arn]},
            }
            events.put_rule(Name="ended", EventPattern=json.dumps(pattern))
            events.put_targets(Rule="ended", Targets=[{"Id": "q", "Arn": queue}])
            yield {"sfn": sfn, "sqs": sqs, "url": url, "arn": arn}
    finally:
        moto_execution.BaseExecutionWorkerCommunication.terminated = original  # type: ignore[method-assign]


def received(machine: dict[str, Any], count: int) -> dict[str, dict[str, Any]]:
    """The events the rule delivered, by execution name, read until `count` arrived."""
    found: dict[str, dict[str, Any]] = {}

    def arrived() -> bool:
        response = machine["sqs"].receive_message(QueueUrl=machine["url"], MaxNumberOfMessages=10)
        for message in response.get("Messages", []):
            event = json.loads(message["Body"])
            found[event["detail"]["name"]] = event
        return len(found) >= count

    eventually(arrived, timeout=30, interval=0.05, what=f"{count} execution status events")
    return found


def test_failed_timed_out_and_aborted_executions_are_announced_and_a_success_is_not_matched(
    machine: dict[str, Any],
) -> None:
    sfn = machine["sfn"]
    # Given four executions: one reaches a Fail state, one outlives TimeoutSeconds, one is stopped, one
    # succeeds
    start = {
        "failed": {"fail": True},
        "timed-out": {"fail": False, "wait": 30},
        "aborted": {"fail": False, "wait": 30},
        "succeeded": {"fail": False, "wait": 0},
    }
    arns = {
        name: sfn.start_execution(stateMachineArn=machine["arn"], name=name, input=json.dumps(given))[
            "executionArn"
        ]
        for name, given in start.items()
    }
    # When the operator stops one
    sfn.stop_execution(executionArn=arns["aborted"])
    # Then the rule delivers exactly the three that did not succeed, each with the documented detail
    events = received(machine, 3)
    assert sorted(events) == ["aborted", "failed", "timed-out"]
    for name, event in events.items():
        assert (event["source"], event["detail-type"]) == (
            "aws.states",
            "Step Functions Execution Status Change",
        )
        assert event["resources"] == [arns[name]]
        detail = event["detail"]
        assert (detail["executionArn"], detail["stateMachineArn"]) == (arns[name], machine["arn"])
        assert json.loads(detail["input"]) == start[name]
        assert detail["startDate"] <= detail["stopDate"]
    assert {name: event["detail"]["status"] for name, event in events.items()} == {
        "failed": "FAILED",
        "timed-out": "TIMED_OUT",
        "aborted": "ABORTED",
    }
    assert events["failed"]["detail"]["error"] == "JobFailed"
    # And the success ended without a matching event
    assert sfn.describe_execution(executionArn=arns["succeeded"])["status"] == "SUCCEEDED"
    assert machine["sqs"].receive_message(QueueUrl=machine["url"], WaitTimeSeconds=0).get("Messages") is None


def test_a_history_event_with_a_non_number_in_an_integer_field_still_serializes() -> None:
    # Given a history event as moto records one after WaitForJob: a dict where the API has an integer
    event = {
        "id": 7,
        "previousEventId": 6,
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {"resource": "invoke", "parameters": "{}", "timeoutInSeconds": {"x": 1}},
    }
    # When it is made fit for GetExecutionHistory's response
    execution_events.without_bad_integers(event, execution_events.HISTORY_EVENT)
    # Then only the bad field is left out
    assert event == {
        "id": 7,
        "previousEventId": 6,
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {"resource": "invoke", "parameters": "{}"},
    }
