"""The safety net under FailJob: the job workflow's executions that end FAILED, TIMED_OUT or ABORTED are
delivered to fail-job, with retries and a dead-letter queue; fail-job may read this machine's histories."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.helpers import Synthesized, actions, function_ids, render, resources_for

MACHINE = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:osbatch-jobs"
EXECUTIONS = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:osbatch-jobs:*"
# Written out from "Automating Step Functions event delivery with EventBridge" (AWS Step Functions
# Developer Guide), not derived from the code under test.
EXPECTED_PATTERN = {
    "source": ["aws.states"],
    "detail-type": ["Step Functions Execution Status Change"],
    "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [MACHINE]},
}


@pytest.fixture(scope="module")
def sweep_rule(main: Synthesized) -> dict[str, Any]:
    fail = function_ids(main)["fail-job"]
    (rule,) = [
        rule["Properties"]
        for rule in main.of_type("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [fail, "Arn"]} for t in rule["Properties"].get("Targets", []))
    ]
    return rule


def test_the_rule_matches_the_workflows_ending_statuses_only(sweep_rule: dict[str, Any]) -> None:
    # Given the rule that targets fail-job
    # Then it is on the default bus and matches exactly the documented event of this state machine
    pattern = sweep_rule["EventPattern"]
    assert render(pattern["detail"]["stateMachineArn"][0]) == MACHINE
    pattern = {**pattern, "detail": {**pattern["detail"], "stateMachineArn": [MACHINE]}}
    assert pattern == EXPECTED_PATTERN
    assert "EventBusName" not in sweep_rule and sweep_rule["State"] == "ENABLED"


def test_delivery_is_retried_for_a_day_then_kept_in_a_dead_letter_queue(
    main: Synthesized, sweep_rule: dict[str, Any]
) -> None:
    # Given the rule's one target
    (target,) = sweep_rule["Targets"]
    # Then a failed delivery is retried as long as EventBridge allows, then parked in an encrypted queue
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = main.of_type("AWS::SQS::Queue")[queue_id]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    # And EventBridge may send to that queue from this rule only
    policies = [
        statement
        for policy in main.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]
    (send,) = policies
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceArn" in str(send["Condition"])


def test_eventbridge_may_invoke_fail_job_from_this_rule_only(main: Synthesized) -> None:
    # Given the Lambda permissions on fail-job
    fail = function_ids(main)["fail-job"]
    (permission,) = [
        p["Properties"]
        for p in main.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [fail, "Arn"]}
    ]
    # Then EventBridge may invoke it, from one rule
    assert permission["Principal"] == "events.amazonaws.com" and "SourceArn" in permission


def test_only_fail_job_reads_execution_histories_of_this_machine_only(main: Synthesized) -> None:
    # Given every function's states:GetExecutionHistory grants
    readers = {
        name: resources_for(main, name, "states:GetExecutionHistory")
        for name in function_ids(main)
        if "states:GetExecutionHistory" in actions(main, name)
    }
    # Then only fail-job may, on this machine's executions
    assert readers == {"fail-job": [EXECUTIONS]}
