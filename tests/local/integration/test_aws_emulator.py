"""The local AWS emulator end to end: a real CDK app deployed through its CloudFormation, driven by boto3.

One emulator process (time scale 0.01) and one deployment (tests/local/integration/conftest.py) serve the
emulator tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.aws.cdk_deploy import DeployedStack, deploy_assembly
from tests.helpers import eventually
from tests.local.integration.helpers import TIME_SCALE, Aws, aws_cli
from tests.local.integration.stacks.stack_app import SEARCH_ENDPOINT, STACK_NAME, synthesize

pytestmark = pytest.mark.integration


def _function_environment(aws: Aws, name: str) -> dict[str, str]:
    return dict(aws("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"])


def _execution(aws: Aws, deployed: DeployedStack, name: str) -> dict[str, Any]:
    arn = deployed.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"

    def finished() -> dict[str, Any] | None:
        try:
            description = aws("stepfunctions").describe_execution(executionArn=arn)
        except aws("stepfunctions").exceptions.ExecutionDoesNotExist:
            return None
        return None if description["status"] == "RUNNING" else dict(description)

    return eventually(finished, what=f"execution {name} finished")


def _start(aws: Aws, deployed: DeployedStack, name: str, **state: Any) -> None:
    aws("stepfunctions").start_execution(
        stateMachineArn=deployed.outputs["StateMachineArn"],
        name=name,
        input=json.dumps({"job_id": name, "bucket": deployed.outputs["BucketName"], **state}),
    )


def _history(aws: Aws, execution_arn: str) -> list[dict[str, Any]]:
    return list(aws("stepfunctions").get_execution_history(executionArn=execution_arn)["events"])


def test_deploy_creates_the_stack_in_cloudformation(deployed: DeployedStack, aws: Aws, emulator: str) -> None:
    # Given the synthesized test app, deployed once through the emulator's CloudFormation
    outputs = deployed.outputs

    # When we look at what the emulator now holds
    redrive = json.loads(
        aws("sqs").get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    mappings = aws("lambda").list_event_source_mappings(FunctionName=outputs["EchoFunctionName"])
    definition = json.loads(
        aws("stepfunctions").describe_state_machine(stateMachineArn=outputs["StateMachineArn"])["definition"]
    )
    described = json.loads(aws_cli(emulator, "cloudformation", "describe-stacks"))

    # Then buckets, queues, functions, mappings, rules and the state machine exist as the template says
    assert deployed.status == "CREATE_COMPLETE"
    assert aws("s3").head_bucket(Bucket=outputs["BucketName"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert redrive["maxReceiveCount"] == 2
    assert redrive["deadLetterTargetArn"].endswith(outputs["DlqUrl"].rsplit("/", 1)[-1])
    [mapping] = mappings["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 5
    environment = _function_environment(aws, outputs["EchoFunctionName"])
    assert environment["GREETING"] == "from the template"
    assert environment["SEARCH_ENDPOINT"] == SEARCH_ENDPOINT  # from CDK context, not patched in
    assert environment["STATE_MACHINE_ARN"] == outputs["StateMachineArn"]
    assert definition["States"]["FanOut"]["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert definition["States"]["Pause"]["SecondsPath"] == "$.wait_seconds"
    [rule] = deployed.of_type("AWS::Events::Rule").values()
    [target] = aws("events").list_targets_by_rule(Rule=rule)["Targets"]
    assert target["Arn"].endswith(outputs["QueueUrl"].rsplit("/", 1)[-1])
    indexes = aws("dynamodb").describe_table(TableName=outputs["TableName"])["Table"][
        "GlobalSecondaryIndexes"
    ]
    assert [(i["IndexName"], [k["AttributeName"] for k in i["KeySchema"]]) for i in indexes] == [
        ("by-pipeline", ["pipeline", "created_at"])
    ]
    # And the aws CLI finds the stack and its outputs the way it would on AWS
    [stack] = described["Stacks"]
    assert stack["StackName"] == STACK_NAME
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == outputs


def test_redeploy_is_an_update_that_keeps_the_data(
    deployed: DeployedStack, assembly: Path, emulator: str, aws: Aws, tmp_path: Path
) -> None:
    # Given the deployed stack holding an object and a table item
    echo, bucket, table = (deployed.outputs[k] for k in ("EchoFunctionName", "BucketName", "TableName"))
    aws("s3").put_object(Bucket=bucket, Key="kept/object.txt", Body=b"still here")
    aws("dynamodb").put_item(TableName=table, Item={"job_id": {"S": "kept"}, "item": {"S": "job"}})

    # When a changed template (another search endpoint in context) is deployed, and then the original again
    changed = synthesize(tmp_path / "cdk.out", search_endpoint="http://127.0.0.1:9201")
    updated = deploy_assembly(changed, STACK_NAME, endpoint_url=emulator, progress=print)
    updated_environment = _function_environment(aws, echo)
    restored = deploy_assembly(assembly, STACK_NAME, endpoint_url=emulator, progress=print)

    # Then both are CloudFormation updates of the same resources, and the function environment followed
    assert (updated.status, restored.status) == ("UPDATE_COMPLETE", "UPDATE_COMPLETE")
    assert updated.stack_id == restored.stack_id == deployed.stack_id
    # (moto 5.2.5 replaces an SNS topic on every update; nothing local uses the alarm topic, so it is left)
    kept = {k: v for k, v in deployed.resources.items() if v[0] != "AWS::SNS::Topic"}
    assert {k: updated.resources[k] for k in kept} == {k: restored.resources[k] for k in kept} == kept
    assert updated_environment["SEARCH_ENDPOINT"] == "http://127.0.0.1:9201"
    assert _function_environment(aws, echo)["SEARCH_ENDPOINT"] == SEARCH_ENDPOINT
    assert len(aws("lambda").list_event_source_mappings(FunctionName=echo)["EventSourceMappings"]) == 1
    # And the bucket and the table kept their data
    assert aws("s3").get_object(Bucket=bucket, Key="kept/object.txt")["Body"].read() == b"still here"
    item = aws("dynamodb").get_item(TableName=table, Key={"job_id": {"S": "kept"}, "item": {"S": "job"}})
    assert item["Item"]["job_id"] == {"S": "kept"}


def test_jsonl_upload_runs_the_real_handler_and_the_workflow(deployed: DeployedStack, aws: Aws) -> None:
    # Given the input bucket, and two objects the rule's key wildcard `in/*.jsonl` must not match
    bucket = deployed.outputs["BucketName"]
    s3 = aws("s3")
    s3.put_object(Bucket=bucket, Key="in/notes.txt", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="elsewhere/job.jsonl", Body=b"{}\n")
    body = b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'

    # When a JSONL file is uploaded under in/
    etag = s3.put_object(Bucket=bucket, Key="in/job-b.jsonl", Body=body)["ETag"].strip('"')
    marker = json.loads(
        eventually(lambda: _object(s3, bucket, "markers/job-b.json"), what="the echo handler's marker object")
    )
    execution = _execution(aws, deployed, "job-b")

    # Then the real handler saw the real S3 -> EventBridge event shape and its Lambda context
    event = marker["event"]
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert event["account"] == deployed.account_id
    assert event["detail"]["bucket"]["name"] == bucket
    assert event["detail"]["object"] | {"sequencer": "-"} == {
        "key": "in/job-b.jsonl",
        "size": len(body),
        "etag": etag,
        "sequencer": "-",
    }
    assert event["detail"]["reason"] == "PutObject"
    assert marker["function_name"] == deployed.outputs["EchoFunctionName"]
    assert 0 < marker["remaining_ms"] <= 30_000
    assert marker["search_endpoint"] == SEARCH_ENDPOINT
    # And the execution ran Wait -> Lambda -> Choice -> Distributed Map over the S3 array -> Succeed
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {
        "job_id": "job-b",
        "bucket": bucket,
        "items_key": "items/job-b.json",
        "mode": "map",
        "wait_seconds": 1,
        "stepped_by": deployed.physical_id("StepA54AB31A"),
    }
    chunks = s3.list_objects_v2(Bucket=bucket, Prefix="chunks/job-b/")["Contents"]
    assert sorted(o["Key"] for o in chunks) == [f"chunks/job-b/{n}.json" for n in (1, 2, 3)]
    # And the non-matching objects never reached the handler
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="markers/")["Contents"]] == [
        "markers/job-b.json"
    ]


def test_custom_error_is_retried_then_caught(deployed: DeployedStack, aws: Aws) -> None:
    # Given an execution routed to the task that raises BackendThrottled (Retry: 1 more attempt, then Catch)
    _start(aws, deployed, "fail-c", mode="fail", wait_seconds=1, items_key="unused")

    # When it finishes
    execution = _execution(aws, deployed, "fail-c")

    # Then the error was retried once and the Catch path produced the output
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"recovered": True, "error": "BackendThrottled"}
    attempts = aws("s3").list_objects_v2(Bucket=deployed.outputs["BucketName"], Prefix="attempts/fail-c/")
    assert len(attempts["Contents"]) == 2
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in _history(aws, execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered[-2:] == ["Recovered", "Done"]


def test_direct_invoke_reports_handler_errors_like_lambda(deployed: DeployedStack, aws: Aws) -> None:
    # Given the function whose handler raises a custom exception
    function = deployed.physical_id("ThrottledFC15A6EA")

    # When it is invoked directly
    response = aws("lambda").invoke(FunctionName=function, Payload=json.dumps({"job_id": "direct"}))

    # Then the error is an Unhandled function error with the Python runtime's payload
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "BackendThrottled"
    assert payload["errorMessage"] == "attempt 1: the backend is throttling"
    assert any("workflow.py" in line for line in payload["stackTrace"])


def test_wait_state_is_time_scaled(deployed: DeployedStack, aws: Aws) -> None:
    # Given an execution whose Wait state says 60 seconds (SecondsPath), at time scale 0.01
    _start(aws, deployed, "wait-d", mode="wait", wait_seconds=60)

    # When it finishes
    execution = _execution(aws, deployed, "wait-d")

    # Then the recorded Wait lasted at least its scaled length and less than its unscaled one
    events = {e["type"]: e["timestamp"] for e in _history(aws, execution["executionArn"])}
    waited = (events["WaitStateExited"] - events["WaitStateEntered"]).total_seconds()
    assert execution["status"] == "SUCCEEDED"
    assert waited >= 60 * TIME_SCALE
    assert waited < 60


def test_failed_batch_items_stay_in_the_queue_until_the_dlq(deployed: DeployedStack, aws: Aws) -> None:
    # Given a file the echo handler rejects through a partial batch response (maxReceiveCount 2)
    sqs = aws("sqs")

    # When it is uploaded
    aws("s3").put_object(Bucket=deployed.outputs["BucketName"], Key="in/poison.jsonl", Body=b"{}\n")

    # Then the failed message is not deleted: it is retried and then moved to the DLQ
    def dead_letter() -> list[dict[str, Any]]:
        return list(sqs.receive_message(QueueUrl=deployed.outputs["DlqUrl"]).get("Messages", []))

    [message] = eventually(dead_letter, what="the poison message in the DLQ")
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "in/poison.jsonl"
    attributes = sqs.get_queue_attributes(QueueUrl=deployed.outputs["QueueUrl"], AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def _object(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
