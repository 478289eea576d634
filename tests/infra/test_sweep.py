"""The safety net under FailJob: the job workflow's executions that end FAILED, TIMED_OUT or ABORTED are
delivered to fail-job, with retries and a dead-letter queue; fail-job may read this machine's histories."""

from __future__ import annotations

import json
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


def _sweep_queue_id(sweep_rule: dict[str, Any]) -> str:
    (target,) = sweep_rule["Targets"]
    return str(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])


def test_any_message_in_the_dead_letter_queue_alarms_as_jobs_that_could_not_be_ended(
    main: Synthesized, sweep_rule: dict[str, Any]
) -> None:
    # Given the alarms on the rule's dead-letter queue
    queue_id = _sweep_queue_id(sweep_rule)
    alarms = [
        alarm["Properties"]
        for alarm in main.of_type("AWS::CloudWatch::Alarm").values()
        if {"Fn::GetAtt": [queue_id, "QueueName"]} in _dimension_values(alarm["Properties"])
    ]
    # Then one alarm fires on the first message it holds, named for what that message is
    (alarm,) = alarms
    (query,) = alarm["Metrics"]
    metric = query["MetricStat"]["Metric"]
    assert (metric["Namespace"], metric["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert query["MetricStat"]["Stat"] == "Maximum"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"  # SQS stops sampling an idle, empty queue
    assert alarm["AlarmName"] == "osbatch-UnendedJobs-SweepDlq-Critical"
    # And its description tells the operator what to run once the cause is fixed
    assert "could not end" in alarm["AlarmDescription"]
    assert "osbatch end-unended" in alarm["AlarmDescription"]


def test_the_dashboard_charts_the_dead_letter_queues_depth_and_age_only(
    main: Synthesized, sweep_rule: dict[str, Any]
) -> None:
    # Given the dashboard's widgets that chart the rule's dead-letter queue
    queue = f"<{_sweep_queue_id(sweep_rule)}.QueueName>"
    (dashboard,) = main.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(render(dashboard["Properties"]["DashboardBody"]))
    charted = [
        [line[1] for line in widget["properties"]["metrics"] if queue in line]
        for widget in body["widgets"]
        if widget["type"] == "metric" and queue in json.dumps(widget["properties"]["metrics"])
    ]
    # Then two widgets chart its two gauges, which SQS samples with the queue empty, and nothing that stays
    # empty after a successful job (sent, size, rates): tests/integration/test_dashboard.py needs data in each
    assert sorted(charted) == [["ApproximateAgeOfOldestMessage"], ["ApproximateNumberOfMessagesVisible"]]


def test_outputs_name_the_dead_letter_queue_and_the_function_that_ends_its_jobs(
    main: Synthesized, sweep_rule: dict[str, Any]
) -> None:
    # Given the stack outputs `osbatch end-unended` reads
    outputs = main.outputs
    # Then they are the rule's dead-letter queue and the rule's target, fail-job
    assert outputs["SweepDlqUrl"]["Value"] == {"Ref": _sweep_queue_id(sweep_rule)}
    (target,) = sweep_rule["Targets"]
    fail = function_ids(main)["fail-job"]
    assert target["Arn"] == {"Fn::GetAtt": [fail, "Arn"]}
    assert outputs["FailJobFunctionName"]["Value"] == {"Ref": fail}


def _dimension_values(alarm: dict[str, Any]) -> list[Any]:
    return [
        dimension["Value"]
        for query in alarm.get("Metrics", [])
        if "MetricStat" in query
        for dimension in query["MetricStat"]["Metric"].get("Dimensions", [])
    ]
