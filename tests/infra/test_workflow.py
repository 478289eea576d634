"""The job workflow is the one docs/architecture.md draws: states, transitions, retries, catches, the Map."""

from __future__ import annotations

from typing import Any

import pytest

from infra.workflow import (
    LAMBDA_SERVICE_ERRORS,
    LAMBDA_THROTTLED,
    SLOT_WAIT_FALLBACK_SECONDS,
    throttle_attempts,
)
from tests.infra.helpers import Synthesized, definition

TASKS = ["Prepare", "StartJob", "PollJob", "PlanIngest", "Finalize"]


@pytest.fixture(scope="module")
def states(main: Synthesized) -> dict[str, Any]:
    return definition(main)["States"]


def test_states_and_transitions_follow_the_contract(main: Synthesized, states: dict[str, Any]) -> None:
    # Given the state machine definition
    machine = definition(main)

    # Then it starts at BatchIngest? and has exactly the documented states, in JSONPath
    assert machine["StartAt"] == "BatchIngest?"
    assert machine["QueryLanguage"] == "JSONPath"
    assert set(states) == {
        "BatchIngest?", "Prepare", "HasRecords?", "StartJob", "WaitForSlot", "WaitForJob", "PollJob",
        "JobDone?", "PartFinished?", "PlanIngest", "IngestChunks", "Finalize", "FailJob", "JobFailed",
    }  # fmt: skip
    assert states["Prepare"]["Next"] == "HasRecords?"
    assert states["StartJob"]["Next"] == "WaitForJob"
    assert states["WaitForJob"]["Next"] == "PollJob"
    assert states["PollJob"]["Next"] == "JobDone?"
    assert states["PlanIngest"]["Next"] == "IngestChunks"
    assert states["IngestChunks"]["Next"] == "PartFinished?"
    assert states["Finalize"]["End"] is True
    assert states["FailJob"]["Next"] == "JobFailed"
    assert states["JobFailed"]["Type"] == "Fail"


def test_wait_for_job_parks_on_a_task_token_and_polls_at_its_timeout(states: dict[str, Any]) -> None:
    # Given WaitForJob
    park = states["WaitForJob"]
    # Then it invokes park-job with the job id and its task token and waits for the token, at most the poll
    # interval, the JobState passing through unchanged (the callback's output is discarded)
    assert park["Type"] == "Task"
    assert park["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert park["Parameters"]["Payload"] == {"job_id.$": "$.job_id", "token.$": "$$.Task.Token"}
    assert park["TimeoutSecondsPath"] == "$.poll.wait_seconds" and "TimeoutSeconds" not in park
    assert park["ResultPath"] is None and "OutputPath" not in park
    # And its timeout goes to PollJob (the polling fallback, state unchanged) before any other error fails
    assert park["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "PollJob"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailJob"},
    ]
    # And Lambda's own errors are retried as for every other task
    assert [rule["ErrorEquals"] for rule in park["Retry"]] == [
        list(LAMBDA_THROTTLED.errors),
        list(LAMBDA_SERVICE_ERRORS.errors),
    ]


def test_a_batch_request_goes_straight_to_the_same_plan_and_map_as_a_job(states: dict[str, Any]) -> None:
    # Given the BatchIngest? choice at the start
    choice = states["BatchIngest?"]
    # Then a JobState with `batch` skips inference for the one PlanIngest -> IngestChunks -> Finalize,
    # and every other goes to Prepare
    assert choice["Choices"] == [{"Variable": "$.batch", "IsPresent": True, "Next": "PlanIngest"}]
    assert choice["Default"] == "Prepare"
    # And each chunk learns which of the request's files it reads
    selector = states["IngestChunks"]["ItemSelector"]
    assert selector["file.$"] == "$$.Map.Item.Value.file"


def test_has_records_skips_inference_when_nothing_is_valid(states: dict[str, Any]) -> None:
    # Given the HasRecords? choice
    choice = states["HasRecords?"]

    # Then valid records go to StartJob and none go straight to Finalize
    assert choice["Choices"] == [
        {"Variable": "$.prepared.valid", "NumericGreaterThan": 0, "Next": "StartJob"}
    ]
    assert choice["Default"] == "Finalize"


def test_job_done_routes_each_state(states: dict[str, Any]) -> None:
    # Given the JobDone? choice
    routes = {
        rule["Next"]: {branch["StringEquals"] for branch in rule["Or"]}
        for rule in states["JobDone?"]["Choices"]
    }

    # Then waiting and done states ask whether a part finished, failed states fail, anything unknown too
    assert all(
        rule_or["Variable"] == "$.status.state" for r in states["JobDone?"]["Choices"] for rule_or in r["Or"]
    )
    assert routes == {
        "PartFinished?": {"CREATED", "RUNNING", "CANCELLING", "COMPLETED", "PARTIALLY_COMPLETED"},
        "FailJob": {"FAILED", "CANCELLED", "EXPIRED", "UNREACHABLE"},
    }
    assert states["JobDone?"]["Default"] == "FailJob"


def test_part_finished_ingests_each_remote_job_as_it_ends_then_waits_or_finalizes(
    states: dict[str, Any],
) -> None:
    # Given the PartFinished? choice, reached after every poll and after every ingest
    choice = states["PartFinished?"]
    ready, done = choice["Choices"]

    # Then any remote job finished and not yet ingested is planned and ingested first
    assert ready == {"Variable": "$.status.ready", "NumericGreaterThan": 0, "Next": "PlanIngest"}
    # And when every remote job ended and all are ingested, the job is finalized; otherwise it waits on
    assert done["Next"] == "Finalize"
    assert {branch["StringEquals"] for branch in done["Or"]} == {"COMPLETED", "PARTIALLY_COMPLETED"}
    assert choice["Default"] == "WaitForJob"


def test_every_task_passes_the_job_state_and_returns_the_payload(states: dict[str, Any]) -> None:
    for name in [*TASKS, "FailJob"]:
        # Given a Lambda task
        task = states[name]
        # Then it sends the whole state and keeps only the function's result
        assert task["Resource"].endswith(":states:::lambda:invoke"), name
        assert task["Parameters"]["Payload.$"] == "$", name
        assert task["OutputPath"] == "$.Payload", name


def _lambda_retriers(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in task["Retry"] if any(e.startswith("Lambda.") for e in r["ErrorEquals"])]


def test_lambda_throttling_and_service_errors_have_their_own_jittered_retries(states: dict[str, Any]) -> None:
    inner = states["IngestChunks"]["ItemProcessor"]["States"]["IngestChunk"]
    for name, task in [*((n, states[n]) for n in [*TASKS, "FailJob"]), ("IngestChunk", inner)]:
        # Given a Lambda task's retriers for Lambda's own errors
        throttled, service = _lambda_retriers(task)
        # Then throttling is retried on its own: from 10 s, doubling, capped at 5 min, full jitter; 10 times,
        # and 40 for a Map child, which queues behind the other uploads' chunks
        assert throttled == {
            "ErrorEquals": ["Lambda.TooManyRequestsException"],
            "IntervalSeconds": 10,
            "BackoffRate": 2,
            "MaxDelaySeconds": 300,
            "MaxAttempts": 40 if name == "IngestChunk" else 10,
            "JitterStrategy": "FULL",
        }, name
        # And service errors on their own: from 5 s, capped at 2 min, full jitter
        assert service == {
            "ErrorEquals": [
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.ClientExecutionTimeoutException",
            ],
            "IntervalSeconds": 5,
            "BackoffRate": 2,
            "MaxDelaySeconds": 120,
            "MaxAttempts": 8,
            "JitterStrategy": "FULL",
        }, name


def test_lambda_retries_last_minutes_not_seconds() -> None:
    # Given the two Lambda retry rules
    # When their delays are added up (10+20+40+80+160+5*300; 5+10+20+40+80+3*120)
    # Then a throttled task keeps trying for half an hour and a service error for over eight minutes
    assert LAMBDA_THROTTLED.longest_wait_seconds() == 1810
    assert LAMBDA_SERVICE_ERRORS.longest_wait_seconds() == 515


def test_every_task_and_the_map_catch_into_fail_job(states: dict[str, Any]) -> None:
    for name in [*TASKS, "IngestChunks"]:
        # Given a task (or the Map)
        # Then any error keeps the state, adds it under $.error and goes to FailJob (StartJob's last
        # catcher: a refused slot is caught before, to WaitForSlot)
        assert states[name]["Catch"][-1:] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailJob"}
        ]
        assert len(states[name]["Catch"]) == (2 if name == "StartJob" else 1)
    assert "Catch" not in states["FailJob"]


def test_start_job_retries_throttling_for_the_longest_retry_window(states: dict[str, Any]) -> None:
    # Given StartJob's retriers; the pipelines' windows are PT2H and PT6H
    (throttled,) = [r for r in states["StartJob"]["Retry"] if "BackendThrottled" in r["ErrorEquals"]]

    # Then BackendThrottled backs off from 30 s, doubling, capped at 10 minutes, for six hours
    assert throttled == {
        "ErrorEquals": ["BackendThrottled"],
        "IntervalSeconds": 30,
        "BackoffRate": 2,
        "MaxDelaySeconds": 600,
        "MaxAttempts": throttle_attempts(6 * 3600),
    }


def test_start_job_refused_a_slot_parks_until_a_release_wakes_it(states: dict[str, Any]) -> None:
    # Given StartJob's retriers and catchers
    start = states["StartJob"]

    # Then JobSlotsFull is not retried in place but caught first, to WaitForSlot, the JobState unchanged;
    # every other error still fails the job
    assert not [r for r in start["Retry"] if "JobSlotsFull" in r["ErrorEquals"]]
    assert start["Catch"] == [
        {"ErrorEquals": ["JobSlotsFull"], "ResultPath": None, "Next": "WaitForSlot"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailJob"},
    ]
    # And WaitForSlot parks on a task token with park-job, as WaitForJob does, saying it waits for a slot,
    # for at most the fallback (the 10-minute cap of the retrier it replaces)
    park = states["WaitForSlot"]
    assert park["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert park["Parameters"]["Payload"] == {
        "job_id.$": "$.job_id",
        "token.$": "$$.Task.Token",
        "wait": "slot",
    }
    assert park["Parameters"]["FunctionName"] == states["WaitForJob"]["Parameters"]["FunctionName"]
    assert park["TimeoutSeconds"] == SLOT_WAIT_FALLBACK_SECONDS == 600
    assert park["ResultPath"] is None and "OutputPath" not in park
    # And woken or timed out, StartJob tries again; any other error fails the job
    assert park["Next"] == "StartJob"
    assert park["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "StartJob"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailJob"},
    ]


def test_a_throttled_chunk_waits_longer_than_other_tasks(states: dict[str, Any]) -> None:
    # Given the Map's IngestChunk task and StartJob (every other task has the same Lambda retriers)
    inner = states["IngestChunks"]["ItemProcessor"]["States"]["IngestChunk"]
    throttled = "Lambda.TooManyRequestsException"
    (chunk,) = [r for r in inner["Retry"] if throttled in r["ErrorEquals"]]
    (task,) = [r for r in states["StartJob"]["Retry"] if throttled in r["ErrorEquals"]]
    # Then a Map child throttled by ingest-chunk's reservation retries 40 times (up to 3 h), not 10: it
    # queues behind the uploads ingesting ahead of it, however many ended their inference at once
    assert chunk == {**task, "MaxAttempts": 40}
    assert task["MaxAttempts"] == 10
    # And it is the first rule, as on every task
    assert inner["Retry"][0] == chunk


def test_a_chunk_without_a_writer_slot_comes_back_later(states: dict[str, Any]) -> None:
    # Given the Map's IngestChunk task
    inner = states["IngestChunks"]["ItemProcessor"]["States"]["IngestChunk"]
    # Then NoWriterSlot (every writer slot of the domain taken for a third of the invocation) is retried,
    # bounded, with backoff and full jitter, instead of failing the Map child and the upload
    (no_slot,) = [r for r in inner["Retry"] if "NoWriterSlot" in r["ErrorEquals"]]
    assert no_slot == {
        "ErrorEquals": ["NoWriterSlot"],
        "IntervalSeconds": 30,
        "BackoffRate": 2,
        "MaxDelaySeconds": 300,
        "MaxAttempts": 20,
        "JitterStrategy": "FULL",
    }


def test_ingest_chunks_is_a_bounded_distributed_map_over_the_plan(states: dict[str, Any]) -> None:
    # Given the IngestChunks Map
    ingest = states["IngestChunks"]

    # Then it reads the JSON plan the job state points at
    assert ingest["ItemReader"]["Resource"].endswith(":states:::s3:getObject")
    assert ingest["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert ingest["ItemReader"]["Parameters"] == {"Bucket.$": "$.plan.bucket", "Key.$": "$.plan.key"}
    # And runs distributed, eight chunks at a time, discarding results (counts live in the table)
    assert ingest["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert ingest["MaxConcurrency"] == 8
    assert ingest["ResultPath"] is None
    # And tolerates the failed chunks the job's plan allows (the pipeline's setting, 0 by default)
    assert ingest["ToleratedFailurePercentagePath"] == "$.plan.tolerated_failure_percentage"
    assert "ToleratedFailurePercentage" not in ingest and "ToleratedFailureCount" not in ingest
    # And each item becomes an IngestChunk: the job's id, pipeline and source plus the plan item
    assert ingest["ItemSelector"] == {
        "job_id.$": "$.job_id",
        "pipeline.$": "$.pipeline",
        "source.$": "$.source",
        **{
            f"{field}.$": f"$$.Map.Item.Value.{field}"
            for field in ("chunk", "bucket", "key", "start", "end", "version_base", "file")
        },
    }
    inner = ingest["ItemProcessor"]["States"]["IngestChunk"]
    assert inner["Parameters"]["Payload.$"] == "$" and inner["End"] is True
    # And a chunk killed by its timeout or a crash is retried, to resume from its checkpoint
    (killed,) = [r for r in inner["Retry"] if "Sandbox.Timedout" in r["ErrorEquals"]]
    assert killed == {
        "ErrorEquals": ["Sandbox.Timedout", "Runtime.ExitError"],
        "IntervalSeconds": 5,
        "BackoffRate": 2,
        "MaxDelaySeconds": 60,
        "MaxAttempts": 3,
        "JitterStrategy": "FULL",
    }


def test_state_machine_is_standard_traced_logged_and_bounded(main: Synthesized) -> None:
    # Given the state machine resource
    (machine,) = main.of_type("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]

    # Then it is a Standard workflow with a known name, X-Ray tracing and ERROR logs without data
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "osbatch-jobs"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ERROR"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    # And it times out 24 h after the longest polling timeout (96 h) plus the longest slot wait (two days)
    assert definition(main)["TimeoutSeconds"] == (96 + 24 + 48) * 3600


@pytest.mark.parametrize(
    ("window", "attempts"),
    [(1, 1), (30, 1), (31, 2), (930, 5), (931, 6), (7200, 16)],
)
def test_throttle_attempts_cover_the_window(window: int, attempts: int) -> None:
    # Given a retry window in seconds
    # When the attempts are computed (delays 30, 60, 120, 240, 480, then 600 each)
    # Then they are the fewest whose delays add up to the window
    assert throttle_attempts(window) == attempts
