"""Each Lambda invocation runs in a sandbox process of its function, with Lambda's limits.

The functions are in tests/local/integration/stacks (handlers/limits.py), deployed once by conftest.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.aws import is_ready
from local.aws.cdk_deploy import DeployedStack
from local.aws.sandbox.logs import log_file
from tests.helpers import eventually
from tests.local.integration.helpers import Aws, aws_cli
from tests.local.integration.stacks.stack_app import FAN_OUT_ITEMS

pytestmark = pytest.mark.integration


def _invoke(aws: Aws, function: str, event: dict[str, Any], **client: Any) -> tuple[str | None, Any]:
    response = aws("lambda", **client).invoke(FunctionName=function, Payload=json.dumps(event))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at the same instant as a start closes first)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_max_overlap_counts_intervals_open_together() -> None:
    # Given intervals of which at most two are open at once / Then that is what is counted
    assert max_overlap([(0, 2), (1, 3), (2.5, 4), (5, 6)]) == 2
    assert max_overlap([(0, 1), (1, 2)]) == 1


def test_a_distributed_map_runs_its_items_in_parallel_sandboxes(deployed: DeployedStack, aws: Aws) -> None:
    # Given a Distributed Map of 8 items with MaxConcurrency 8, each item recording when it ran
    run = uuid.uuid4().hex[:8]
    items = [{"run": run, "item": n} for n in range(FAN_OUT_ITEMS)]
    arn = aws("stepfunctions").start_execution(
        stateMachineArn=deployed.outputs["OverlapStateMachineArn"], input=json.dumps({"items": items})
    )["executionArn"]

    # When the execution finishes
    def finished() -> dict[str, Any] | None:
        description = aws("stepfunctions").describe_execution(executionArn=arn)
        return None if description["status"] == "RUNNING" else dict(description)

    execution = eventually(finished, what="the fan-out execution")
    s3, bucket = aws("s3"), deployed.outputs["BucketName"]
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"overlap/{run}/ran/")["Contents"]
    records = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listing]

    # Then every item ran, at least two of them at the same time, in different sandbox processes
    overlap = max_overlap([(r["start"], r["end"]) for r in records])
    print(f"max overlap of {FAN_OUT_ITEMS} items: {overlap}; sandboxes: {len({r['pid'] for r in records})}")
    assert execution["status"] == "SUCCEEDED"
    assert sorted(r["item"] for r in records) == list(range(FAN_OUT_ITEMS))
    assert overlap >= 2
    assert len({r["pid"] for r in records}) >= 2


def test_a_function_past_its_timeout_is_killed(deployed: DeployedStack, aws: Aws, emulator: str) -> None:
    # Given a function with a 2 s timeout whose handler never returns
    function = deployed.outputs["SleepyFunctionName"]

    # When it is invoked, and then invoked with an event it finishes
    error, payload = _invoke(aws, function, {})
    after_error, after = _invoke(aws, function, {"sleep": False})

    # Then the first invocation fails as Lambda's timeout does, and the next one runs in a fresh sandbox
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Error: Task timed out after 2.00 seconds")
    assert (after_error, after) == (None, {"slept": False})
    # And the timeout is in the function's log group, read back with the aws CLI (v1 has no `logs tail`;
    # v2's `tail` reads the same FilterLogEvents)
    log_group = f"/aws/lambda/{function}"
    tail = aws_cli(emulator, "logs", "filter-log-events", "--output", "text", "--log-group-name", log_group)
    assert "Task timed out after 2.00 seconds" in tail
    assert "START RequestId:" in tail


def test_a_function_past_its_memory_size_is_killed(deployed: DeployedStack, aws: Aws) -> None:
    # Given a function with MemorySize 128 whose handler keeps allocating
    function = deployed.outputs["HungryFunctionName"]

    # When it is invoked, and then invoked for an amount that fits
    error, payload = _invoke(aws, function, {})
    fits_error, fits = _invoke(aws, function, {"megabytes": 8})

    # Then the first fails with Lambda's out-of-memory error, and the next one runs
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime exited with error: signal: killed" in payload["errorMessage"]
    assert (fits_error, fits) == (None, {"held_mb": 8})


def test_a_crashing_sandbox_fails_only_its_invocation(
    deployed: DeployedStack, aws: Aws, emulator: str, emulator_home: Path
) -> None:
    # Given a handler that ends its own process
    function = deployed.outputs["CrashFunctionName"]

    # When it crashes, and the function is invoked again
    error, payload = _invoke(aws, function, {})
    again_error, again = _invoke(aws, function, {"crash": False})

    # Then that invocation fails as Lambda reports a runtime exit, and the emulator and function live on
    assert (error, payload["errorType"]) == ("Unhandled", "Runtime.ExitError")
    assert payload["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert again_error is None and isinstance(again["pid"], int)
    assert is_ready(emulator)
    # (in the emulator's own state folder)
    assert "Runtime exited with error: exit status 3" in log_file(function, emulator_home).read_text()


def test_reserved_concurrency_throttles_the_invocation_past_it(deployed: DeployedStack, aws: Aws) -> None:
    # Given a function with ReservedConcurrentExecutions 1, busy with an invocation that holds its sandbox
    function, bucket = deployed.outputs["GateFunctionName"], deployed.outputs["BucketName"]
    run = uuid.uuid4().hex[:8]
    aws("lambda").invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps({"run": run}))
    eventually(
        lambda: "Contents" in aws("s3").list_objects_v2(Bucket=bucket, Prefix=f"gate/{run}/started"),
        what="the first invocation holding the sandbox",
    )

    # When a second invocation arrives meanwhile (with the SDK's retries off, to see the first answer)
    with pytest.raises(ClientError) as throttled:
        aws("lambda", config=Config(retries={"max_attempts": 0})).invoke(
            FunctionName=function, Payload=json.dumps({"run": f"{run}-second"})
        )
    aws("s3").put_object(Bucket=bucket, Key=f"gate/{run}/release", Body=b"")

    # Then it is throttled with Lambda's error, and once the sandbox is free the function runs again
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    aws("s3").put_object(Bucket=bucket, Key=f"gate/{run}-after/release", Body=b"")
    released = eventually(
        lambda: _released(aws, function, f"{run}-after"), what="an invocation after the first one ended"
    )
    assert released == {"released": True}


def _released(aws: Aws, function: str, run: str) -> dict[str, Any] | None:
    try:
        error, payload = _invoke(aws, function, {"run": run}, config=Config(retries={"max_attempts": 0}))
    except ClientError as error:  # still throttled: the first invocation has not returned yet
        if error.response["Error"]["Code"] != "TooManyRequestsException":
            raise
        return None
    assert error is None, payload
    return dict(payload)
