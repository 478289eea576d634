"""`osbatch end-unended`: the jobs whose safety-net event ended in the rule's dead-letter queue are ended
again through fail-job's entry point; a message leaves the queue only when its job is ended."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from cli.exit_codes import ExitCode
from cli.main import main
from cli.unended import Invocation, Outcome, end_unended_jobs, lambda_invoker
from osbatch.dal import JobTable
from osbatch.models import JobState, JobStateName, Prepared
from osbatch.steps.execution_ended import ExecutionStatusEvent, execution_ended
from osbatch.steps.fail_job import fail_job
from osbatch.steps.support.report import JobReport
from tests.unit.fake_backend import ScriptedBackend
from tests.unit.helpers import SOURCE, job_store

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:osbatch-jobs"
RULE = "arn:aws:events:us-east-1:123456789012:rule/osbatch-SweepExecutionEnded"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:osbatch-fail-job"
RECORDS = 10


def ended_event(job_id: str, status: str = "TIMED_OUT") -> dict[str, Any]:
    """A Step Functions Execution Status Change event as EventBridge delivers it ("Automating Step Functions
    event delivery with EventBridge", AWS Step Functions Developer Guide), the execution's input its job."""
    prepared = Prepared(
        input_uri=f"s3://osb-out/jobs/{job_id}/input/",
        parts=1,
        records_in=RECORDS,
        valid=RECORDS,
        dead_lettered=0,
    )
    state = JobState(job_id=job_id, pipeline="msmarco", source=SOURCE, prepared=prepared)
    execution = f"arn:aws:states:us-east-1:123456789012:execution:osbatch-jobs:{job_id}"
    return {
        "version": "0",
        "id": f"event-{job_id}",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T06:00:00Z",
        "region": "us-east-1",
        "resources": [execution],
        "detail": {
            "executionArn": execution,
            "stateMachineArn": MACHINE,
            "name": job_id,
            "status": status,
            "input": json.dumps(state.dump()),
            "error": "States.Timeout" if status == "TIMED_OUT" else None,
            "cause": None,
        },
    }


def dead_letter(sqs: Any, queue_url: str, body: str, error: str = "Function timed out") -> None:
    """The message EventBridge leaves in a target's dead-letter queue: the event, and why it was not
    delivered ("Using dead-letter queues to process undelivered events in EventBridge")."""
    attributes = {
        "ERROR_CODE": "ERROR_FROM_TARGET",
        "ERROR_MESSAGE": error,
        "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds",
        "RETRY_ATTEMPTS": "184",
        "RULE_ARN": RULE,
        "TARGET_ARN": FUNCTION,
    }
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


class FailJobFunction:
    """fail-job's safety-net entry point, its step for real over moto's job table and buckets, answering as
    the handler does; the jobs in `broken` fail as FailJob did when the event was dead-lettered."""

    def __init__(self, jobs: JobTable, s3: Any) -> None:
        self.jobs, self.s3 = jobs, s3
        self.broken: set[str] = set()
        self.invoked: list[str] = []
        self.reports: list[JobReport] = []

    def __call__(self, event: Mapping[str, Any]) -> Invocation:
        detail = ExecutionStatusEvent.model_validate(event).detail
        self.invoked.append(detail.name)
        if detail.name in self.broken:
            return Invocation(error="ResourceNotFoundException: Requested resource not found")
        outcome, _ = execution_ended(detail, jobs=self.jobs, history=lambda arn: [], fail=self._fail)
        return Invocation(response={"outcome": outcome.value, "job_id": detail.name})

    def _fail(self, state: JobState) -> JobState:
        store = job_store(self.jobs, self.s3)
        result, report = fail_job(state, backend=ScriptedBackend(), store=store, publish=lambda event: None)
        self.reports.append(report)
        return result


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="osbatch-sweep-dlq")["QueueUrl"])


@pytest.fixture
def fail_job_function(jobs: JobTable, s3: Any) -> FailJobFunction:
    return FailJobFunction(jobs, s3)


def visible(sqs: Any, queue_url: str) -> list[str]:
    """The job ids of the messages a reader would receive now."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return sorted(json.loads(m["Body"])["detail"]["name"] for m in messages.get("Messages", []))


def un_ended(jobs: JobTable, *job_ids: str) -> None:
    for job_id in job_ids:
        jobs.create(job_id, "msmarco", SOURCE)
        jobs.update(job_id, JobStateName.RUNNING)


def test_an_un_ended_job_is_ended_and_its_event_leaves_the_queue(
    jobs: JobTable, s3: Any, sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given a job whose execution timed out and whose safety-net event EventBridge could not deliver
    un_ended(jobs, "job-a")
    dead_letter(sqs, queue, json.dumps(ended_event("job-a")))
    # When the un-ended jobs are ended
    (result,) = end_unended_jobs(sqs, queue, fail_job_function, wait_seconds=0)
    # Then fail-job ended it as the safety net would have: FAILED with the timeout, every record dead-lettered
    assert (result.job_id, result.execution_status, result.outcome) == ("job-a", "TIMED_OUT", Outcome.ENDED)
    job = jobs.get("job-a")
    assert job is not None and job["state"] == "FAILED" and str(job["reason"]).startswith("States.Timeout")
    (report,) = fail_job_function.reports
    assert (report.records_in, report.dead_lettered, report.unaccounted) == (RECORDS, RECORDS, 0)
    # And its message is gone
    assert visible(sqs, queue) == []


def test_a_job_still_failing_stays_in_the_queue_visible_and_is_ended_by_a_later_run(
    jobs: JobTable, sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given two un-ended jobs, and fail-job still failing for one of them
    un_ended(jobs, "job-a", "job-b")
    for job_id in ("job-a", "job-b"):
        dead_letter(sqs, queue, json.dumps(ended_event(job_id)))
    fail_job_function.broken = {"job-b"}
    # When the un-ended jobs are ended
    results = end_unended_jobs(sqs, queue, fail_job_function, wait_seconds=0)
    # Then the one is ended and the other reported still failing, with the error, its job untouched
    outcomes = {r.job_id: (r.outcome, r.error) for r in results}
    assert outcomes == {
        "job-a": (Outcome.ENDED, None),
        "job-b": (Outcome.STILL_FAILING, "ResourceNotFoundException: Requested resource not found"),
    }
    assert jobs.get("job-b")["state"] == "RUNNING"  # type: ignore[index]
    # And its message stays, visible again at once (each was invoked once in the run)
    assert visible(sqs, queue) == ["job-b"]
    assert sorted(fail_job_function.invoked) == ["job-a", "job-b"]
    # When the cause is fixed and the command runs again
    fail_job_function.broken = set()
    (again,) = end_unended_jobs(sqs, queue, fail_job_function, wait_seconds=0)
    # Then that job is ended too and the queue is empty
    assert (again.job_id, again.outcome) == ("job-b", Outcome.ENDED)
    assert jobs.get("job-b")["state"] == "FAILED"  # type: ignore[index]
    assert visible(sqs, queue) == []


def test_a_job_that_ended_meanwhile_is_left_alone_and_its_event_deleted(
    jobs: JobTable, sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given a dead-lettered event of a job that completed since, and one of no job at all
    un_ended(jobs, "job-a")
    jobs.update("job-a", JobStateName.COMPLETED)
    dead_letter(sqs, queue, json.dumps(ended_event("job-a", "ABORTED")))
    dead_letter(sqs, queue, json.dumps(ended_event("no-such-job", "FAILED")))
    # When the un-ended jobs are ended
    results = end_unended_jobs(sqs, queue, fail_job_function, wait_seconds=0)
    # Then neither is failed, both messages are deleted
    assert {r.job_id: r.outcome for r in results} == {
        "job-a": Outcome.ALREADY_ENDED,
        "no-such-job": Outcome.NOT_A_JOB,
    }
    assert jobs.get("job-a")["state"] == "COMPLETED"  # type: ignore[index]
    assert fail_job_function.reports == [] and visible(sqs, queue) == []


def test_a_dry_run_lists_the_jobs_and_why_they_were_not_delivered_and_changes_nothing(
    jobs: JobTable, sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given an un-ended job's dead-lettered event
    un_ended(jobs, "job-a")
    dead_letter(sqs, queue, json.dumps(ended_event("job-a")), error="Rate exceeded")
    # When they are listed
    (listed,) = end_unended_jobs(sqs, queue, fail_job_function, dry_run=True, wait_seconds=0)
    # Then the job, how its execution ended and EventBridge's reason are listed, and nothing is invoked
    assert (listed.job_id, listed.execution_status, listed.outcome) == ("job-a", "TIMED_OUT", Outcome.LISTED)
    assert listed.not_delivered_because == "ERROR_FROM_TARGET: Rate exceeded"
    assert fail_job_function.invoked == []
    # And the message is still there, visible at once
    assert visible(sqs, queue) == ["job-a"]
    assert jobs.get("job-a")["state"] == "RUNNING"  # type: ignore[index]


def test_a_message_that_is_no_execution_status_event_is_kept_and_never_invoked(
    sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given messages a person put there by hand: not JSON, another source's event, and a status change
    # without the execution's name
    dead_letter(sqs, queue, "not json")
    dead_letter(sqs, queue, json.dumps({**ended_event("job-a"), "source": "aws.s3"}))
    dead_letter(sqs, queue, json.dumps({**ended_event("job-a"), "detail": {"status": "FAILED"}}))
    # When the un-ended jobs are ended
    results = end_unended_jobs(sqs, queue, fail_job_function, wait_seconds=0)
    # Then each is reported unreadable, kept, and fail-job is not asked
    assert [r.outcome for r in results] == [Outcome.UNREADABLE] * 3
    assert fail_job_function.invoked == []
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert len(messages) == 3


def test_an_interrupted_run_gives_back_what_it_had_not_done(
    jobs: JobTable, sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given an un-ended job, and a run interrupted while fail-job runs for it
    un_ended(jobs, "job-a")
    dead_letter(sqs, queue, json.dumps(ended_event("job-a")))

    def interrupted(event: Mapping[str, Any]) -> Invocation:
        raise KeyboardInterrupt

    # When the run stops
    with pytest.raises(KeyboardInterrupt):
        end_unended_jobs(sqs, queue, interrupted, wait_seconds=0)
    # Then its message is visible at once for the next run, not held for the run's visibility timeout
    assert visible(sqs, queue) == ["job-a"]


class HoldRunsOut:
    """The queue as a long run sees it: the messages of the first receive become visible again at once, as
    if the run had outlived its hold, and the first two receives answer one message each (SQS may answer
    fewer than asked), so the second answers only a message seen before."""

    def __init__(self, sqs: Any) -> None:
        self.sqs, self.receives = sqs, 0

    def receive_message(self, **request: Any) -> dict[str, Any]:
        if self.receives < 2:
            request = {**request, "MaxNumberOfMessages": 1}
        answer: dict[str, Any] = self.sqs.receive_message(**request)
        if self.receives == 0:
            for message in answer.get("Messages", []):
                self.sqs.change_message_visibility(
                    QueueUrl=request["QueueUrl"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        self.receives += 1
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)


def test_a_message_received_again_in_a_long_run_is_not_done_twice_and_the_run_goes_on(
    jobs: JobTable, sqs: Any, queue: str, fail_job_function: FailJobFunction
) -> None:
    # Given a still-failing job's event and an un-ended job's, in a run that outlives its hold on the first
    un_ended(jobs, "job-a", "job-b")
    for job_id in ("job-b", "job-a"):
        dead_letter(sqs, queue, json.dumps(ended_event(job_id)))
    fail_job_function.broken = {"job-b"}
    # When the un-ended jobs are ended
    results = end_unended_jobs(HoldRunsOut(sqs), queue, fail_job_function, wait_seconds=0)
    # Then fail-job was asked once for each: the message received again is not done twice, and the run
    # goes on past it to the one it had not seen
    assert sorted((r.job_id, r.outcome) for r in results) == [
        ("job-a", Outcome.ENDED),
        ("job-b", Outcome.STILL_FAILING),
    ]
    assert sorted(fail_job_function.invoked) == ["job-a", "job-b"]
    # And the kept message is visible again for the next run
    assert visible(sqs, queue) == ["job-b"]


def _payload(document: Any) -> StreamingBody:
    raw = json.dumps(document).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_the_lambda_invoker_calls_fail_job_synchronously_and_reads_its_errors() -> None:
    # Given a Lambda client that answers three invocations: ended, a function error, throttled
    client = boto3.client("lambda", region_name="us-east-1")
    event = ended_event("job-a")
    # (each call synchronous, to the function named, with the event as its payload)
    expected = {"FunctionName": "osbatch-fail-job", "InvocationType": "RequestResponse", "Payload": ANY}
    with Stubber(client) as stub:
        ended = {"StatusCode": 200, "Payload": _payload({"outcome": "failed"})}
        stub.add_response("invoke", ended, expected)
        error = {"errorType": "ClientError", "errorMessage": "DynamoDB: throttled", "stackTrace": ["secret"]}
        failed = {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload(error)}
        stub.add_response("invoke", failed, expected)
        stub.add_client_error(
            "invoke", "TooManyRequestsException", "Rate exceeded", 429, expected_params=expected
        )
        invoke = lambda_invoker(client, "osbatch-fail-job")
        # When it invokes fail-job with the event three times
        answers = [invoke(event) for _ in range(3)]
        stub.assert_no_pending_responses()
    # Then the first is fail-job's answer, and the others the error, without the stack trace
    assert answers[0] == Invocation(response={"outcome": "failed"})
    assert answers[1] == Invocation(error="ClientError: DynamoDB: throttled")
    assert answers[2] == Invocation(error="TooManyRequestsException: Rate exceeded")
    assert "secret" not in repr(answers)


def test_the_command_prints_each_job_and_fails_while_any_stays(
    cli_target: Any,
    jobs: JobTable,
    sqs: Any,
    queue: str,
    fail_job_function: FailJobFunction,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the stack's outputs naming the queue and fail-job, an un-ended job and a still-failing one
    cli_target.outputs.update(SweepDlqUrl=queue, FailJobFunctionName="osbatch-fail-job")
    asked: list[str] = []

    def invoker(client: Any, name: str) -> Any:
        asked.append(name)
        return fail_job_function

    monkeypatch.setattr("cli.unended.lambda_invoker", invoker)
    un_ended(jobs, "job-a", "job-b")
    for job_id in ("job-a", "job-b"):
        dead_letter(sqs, queue, json.dumps(ended_event(job_id)))
    fail_job_function.broken = {"job-b"}

    # When `osbatch end-unended --dry-run`, then `osbatch end-unended --json` run
    listed = main(["end-unended", "--dry-run"])
    listing = capsys.readouterr().out
    code = main(["end-unended", "--json"])
    printed = json.loads(capsys.readouterr().out)

    # Then the listing names both jobs and ends nothing
    assert listed == ExitCode.OK and "job-a (TIMED_OUT execution): un-ended" in listing
    assert "not delivered: ERROR_FROM_TARGET: Function timed out" in listing
    assert "2 un-ended job event(s): 2 listed" in listing
    # And the run prints what happened to each, the function it invoked being the stack's fail-job
    assert {row["job_id"]: row["outcome"] for row in printed} == {"job-a": "ended", "job-b": "still-failing"}
    assert asked == ["osbatch-fail-job", "osbatch-fail-job"]
    # And exits 1: a job is still not ended, its event still in the queue
    assert code == ExitCode.FAILED and visible(sqs, queue) == ["job-b"]
