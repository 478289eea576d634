"""The local AWS emulator end to end: a real CDK app deployed into it, driven through boto3.

One emulator process (time scale 0.01) and one deployment serve the whole module.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from local.aws import emulator_process, endpoint_url
from local.aws.cfn_loader import DeployedStack, deploy_assembly, load_stack, stack_path
from tests.integration.stacks.test_stack import STACK_NAME, synthesize

pytestmark = pytest.mark.integration

TIME_SCALE = 0.01
SEARCH_OVERRIDE = {"SEARCH_ENDPOINT": "http://127.0.0.1:9200"}
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(probe: Callable[[], T | None], *, timeout: float = 15.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OSBATCH_HOME", str(tmp_path_factory.mktemp("osbatch-home")))
        port = _free_port()
        process = emulator_process(port, TIME_SCALE, name=f"aws-test-{port}")
        process.start(timeout=60)
        try:
            yield endpoint_url(port)
        finally:
            process.stop()


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def deployed(emulator: str, assembly: Path) -> DeployedStack:
    return deploy_assembly(
        assembly, STACK_NAME, endpoint_url=emulator, environment_overrides=SEARCH_OVERRIDE, progress=print
    )


@pytest.fixture(scope="module")
def aws(emulator: str, deployed: DeployedStack) -> Callable[[str], Any]:
    def client(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=emulator,
            region_name=deployed.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


def _function_environment(aws: Callable[[str], Any], name: str) -> dict[str, str]:
    return dict(aws("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"])


def _execution(aws: Callable[[str], Any], deployed: DeployedStack, name: str) -> dict[str, Any]:
    arn = deployed.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"

    def finished() -> dict[str, Any] | None:
        try:
            description = aws("stepfunctions").describe_execution(executionArn=arn)
        except aws("stepfunctions").exceptions.ExecutionDoesNotExist:
            return None
        return None if description["status"] == "RUNNING" else dict(description)

    return eventually(finished, what=f"execution {name} finished")


def _start(aws: Callable[[str], Any], deployed: DeployedStack, name: str, **state: Any) -> None:
    aws("stepfunctions").start_execution(
        stateMachineArn=deployed.outputs["StateMachineArn"],
        name=name,
        input=json.dumps({"job_id": name, "bucket": deployed.outputs["BucketName"], **state}),
    )


def _history(aws: Callable[[str], Any], execution_arn: str) -> list[dict[str, Any]]:
    return list(aws("stepfunctions").get_execution_history(executionArn=execution_arn)["events"])


def test_deploy_creates_every_supported_resource(deployed: DeployedStack, aws: Callable[[str], Any]) -> None:
    # Given the synthesized test app, deployed once by the module fixture
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

    # Then buckets, queues, functions, mappings, rules and the state machine exist as the template says
    assert aws("s3").head_bucket(Bucket=outputs["BucketName"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert redrive["maxReceiveCount"] == 2
    assert redrive["deadLetterTargetArn"].endswith(outputs["DlqUrl"].rsplit("/", 1)[-1])
    [mapping] = mappings["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 5
    environment = _function_environment(aws, outputs["EchoFunctionName"])
    assert environment["GREETING"] == "from the template"
    assert environment["SEARCH_ENDPOINT"] == SEARCH_OVERRIDE["SEARCH_ENDPOINT"]
    assert environment["STATE_MACHINE_ARN"] == outputs["StateMachineArn"]
    assert definition["States"]["FanOut"]["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert definition["States"]["Pause"]["SecondsPath"] == "$.wait_seconds"
    [rule] = deployed.of_type("AWS::Events::Rule").values()
    [target] = aws("events").list_targets_by_rule(Rule=rule.physical_id)["Targets"]
    assert target["Arn"].endswith(outputs["QueueUrl"].rsplit("/", 1)[-1])
    indexes = aws("dynamodb").describe_table(TableName=outputs["TableName"])["Table"][
        "GlobalSecondaryIndexes"
    ]
    assert [(i["IndexName"], [k["AttributeName"] for k in i["KeySchema"]]) for i in indexes] == [
        ("by-pipeline", ["pipeline", "created_at"])
    ]
    [alarm] = aws("cloudwatch").describe_alarms(AlarmNames=[outputs["AlarmName"]])["MetricAlarms"]
    assert alarm["AlarmActions"] == [deployed.of_type("AWS::SNS::Topic").popitem()[1].physical_id]
    # And the unsupported domain is skipped, with a placeholder naming it where it is referenced
    assert deployed.skipped == {"Search": "AWS::OpenSearchService::Domain"}
    assert outputs["SearchEndpoint"] == "<skipped AWS::OpenSearchService::Domain Search.DomainEndpoint>"
    saved = load_stack(STACK_NAME)
    assert saved is not None and saved.physical_ids == deployed.physical_ids
    assert stack_path(STACK_NAME).is_file()


def test_redeploy_updates_in_place(
    deployed: DeployedStack, assembly: Path, emulator: str, aws: Callable[[str], Any]
) -> None:
    # Given the deployed stack
    echo = deployed.outputs["EchoFunctionName"]

    # When the same assembly is deployed again with one more override
    started = time.monotonic()
    again = deploy_assembly(
        assembly,
        STACK_NAME,
        endpoint_url=emulator,
        environment_overrides={**SEARCH_OVERRIDE, "EXTRA": "1"},
        progress=lambda _: None,
    )
    print(f"redeploy took {time.monotonic() - started:.1f}s")

    # Then every resource keeps its physical id, nothing is duplicated, and function config is updated
    assert again.physical_ids == deployed.physical_ids
    assert again.outputs == deployed.outputs
    assert len(aws("lambda").list_event_source_mappings(FunctionName=echo)["EventSourceMappings"]) == 1
    assert len(aws("stepfunctions").list_state_machines()["stateMachines"]) == 1
    assert _function_environment(aws, echo)["EXTRA"] == "1"


def test_jsonl_upload_runs_the_real_handler_and_the_workflow(
    deployed: DeployedStack, aws: Callable[[str], Any]
) -> None:
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
    assert marker["search_endpoint"] == SEARCH_OVERRIDE["SEARCH_ENDPOINT"]
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


def test_custom_error_is_retried_then_caught(deployed: DeployedStack, aws: Callable[[str], Any]) -> None:
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


def test_direct_invoke_reports_handler_errors_like_lambda(
    deployed: DeployedStack, aws: Callable[[str], Any]
) -> None:
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


def test_wait_state_is_time_scaled(deployed: DeployedStack, aws: Callable[[str], Any]) -> None:
    # Given an execution whose Wait state says 60 seconds (SecondsPath), at time scale 0.01
    started = time.monotonic()
    _start(aws, deployed, "wait-d", mode="wait", wait_seconds=60)

    # When it finishes
    execution = _execution(aws, deployed, "wait-d")
    elapsed = time.monotonic() - started

    # Then the Wait took about 0.6s of real time and the whole execution well under 60s
    events = {e["type"]: e["timestamp"] for e in _history(aws, execution["executionArn"])}
    waited = (events["WaitStateExited"] - events["WaitStateEntered"]).total_seconds()
    assert execution["status"] == "SUCCEEDED"
    assert 0.4 <= waited <= 2.0
    assert elapsed < 5.0


def test_failed_batch_items_stay_in_the_queue_until_the_dlq(
    deployed: DeployedStack, aws: Callable[[str], Any]
) -> None:
    # Given a file the echo handler rejects through a partial batch response (maxReceiveCount 2)
    sqs = aws("sqs")

    # When it is uploaded
    aws("s3").put_object(Bucket=deployed.outputs["BucketName"], Key="in/poison.jsonl", Body=b"{}\n")

    # Then the failed message is not deleted: it is retried and then moved to the DLQ
    def dead_letter() -> list[dict[str, Any]]:
        return list(sqs.receive_message(QueueUrl=deployed.outputs["DlqUrl"]).get("Messages", []))

    [message] = eventually(dead_letter, timeout=20, what="the poison message in the DLQ")
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "in/poison.jsonl"
    attributes = sqs.get_queue_attributes(QueueUrl=deployed.outputs["QueueUrl"], AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def _object(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
