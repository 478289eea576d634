"""The wake rules: the services' documented state-change events of osbatch's jobs, terminal states only,
delivered to wake-job; SendTaskSuccess only on the job workflow."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.helpers import Synthesized, function_ids, render, resources_for

MACHINE = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:osbatch-jobs"
# The patterns, written out from the AWS pages backends/remote_events.py cites, not derived from that module.
EXPECTED_PATTERNS = [
    {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Transform Job State Change"],
        "detail": {
            "TransformJobName": [{"prefix": "osb-"}],
            "TransformJobStatus": ["Completed", "Failed", "Stopped"],
        },
    },
    {
        "source": ["aws.bedrock"],
        "detail-type": ["Batch Inference Job State Change"],
        "detail": {
            "batchJobName": [{"prefix": "osb-"}],
            "status": ["Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"],
        },
    },
]


@pytest.fixture(scope="module")
def wake_rules(main: Synthesized) -> list[dict[str, Any]]:
    wake = function_ids(main)["wake-job"]
    return [
        rule["Properties"]
        for rule in main.of_type("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [wake, "Arn"]} for t in rule["Properties"].get("Targets", []))
    ]


def test_one_rule_per_service_matches_terminal_states_of_osbatch_jobs(
    wake_rules: list[dict[str, Any]],
) -> None:
    # Given the rules that target wake-job
    # Then there is one per service, on the default bus, with exactly the documented pattern
    patterns = sorted((r["EventPattern"] for r in wake_rules), key=lambda p: str(p["source"]))
    assert patterns == sorted(EXPECTED_PATTERNS, key=lambda p: str(p["source"]))
    assert all("EventBusName" not in r and r["State"] == "ENABLED" for r in wake_rules)


def test_delivery_is_retried_for_a_bounded_time(wake_rules: list[dict[str, Any]]) -> None:
    for rule in wake_rules:
        # Given each rule's target
        (target,) = rule["Targets"]
        # Then a failed delivery is retried, for at most an hour (a poll covers what is lost)
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 8}


def test_eventbridge_may_invoke_wake_job_from_these_rules_only(main: Synthesized) -> None:
    # Given the Lambda permissions on wake-job
    wake = function_ids(main)["wake-job"]
    permissions = [
        p["Properties"]
        for p in main.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [wake, "Arn"]}
    ]
    # Then EventBridge may invoke it, each grant held to one of the two rules
    assert len(permissions) == 2
    assert all(p["Principal"] == "events.amazonaws.com" and "SourceArn" in p for p in permissions)


def test_only_park_wake_and_slot_releasers_send_task_tokens_only_to_the_job_workflow(
    main: Synthesized,
) -> None:
    # Given every function's SendTaskSuccess grants
    senders = {
        name: resources_for(main, name, "states:SendTaskSuccess")
        for name in function_ids(main)
        if resources_for(main, name, "states:SendTaskSuccess")
    }
    # Then park-job and wake-job (WaitForJob), and the steps that give a job slot back (WaitForSlot: poll-job,
    # finalize, fail-job) may send, to the workflow's name-derived ARN only
    assert senders == {
        name: [MACHINE] for name in ("park-job", "wake-job", "poll-job", "finalize", "fail-job")
    }


def test_the_workflow_invokes_park_job(main: Synthesized) -> None:
    # Given the state machine role's invoke grants
    park = function_ids(main)["park-job"]
    (role,) = [k for k in main.of_type("AWS::IAM::Role") if k.startswith("WorkflowStateMachineRole")]
    invokes = [
        render(resource)
        for policy in main.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in str(s["Action"])
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    # Then it may invoke park-job (WaitForJob)
    assert f"<{park}.Arn>" in invokes
