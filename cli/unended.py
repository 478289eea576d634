"""`osbatch end-unended`: end the jobs the safety net could not end, once what stopped it is fixed.

The safety net (infra/sweep.py) sends each execution that ended FAILED, TIMED_OUT or ABORTED to fail-job's
function; when fail-job keeps failing past EventBridge's retries (a bug, an outage of DynamoDB or S3 longer
than a day), EventBridge puts the event in the rule's dead-letter queue and the job stays un-ended: no
report, its records in no count. Each message's body is the event as the rule would have delivered it, with
message attributes ERROR_CODE, ERROR_MESSAGE, RULE_ARN, TARGET_ARN (and EXHAUSTED_RETRY_CONDITION,
RETRY_ATTEMPTS) saying why it was not delivered ("Using dead-letter queues to process undelivered events in
EventBridge", docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html). EventBridge never redrives
that queue itself.

This command invokes fail-job's function with each event, synchronously, through the entry point the rule
uses (handlers/fail_job.py), and deletes the message only when the invocation returned without an error.
A job that ended meanwhile is left alone by fail-job (steps/execution_ended.py), so a second run, or an
event delivered twice, is harmless. A message whose invocation fails stays in the queue, visible again
when the run ends, for the next run once its cause is fixed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cli.commands import _target
from cli.exit_codes import ExitCode
from cli.output import to_json

if TYPE_CHECKING:
    from osbatch.steps.execution_ended import ExecutionDetail

# How long a run holds the messages it has received: a batch of ten, each invocation up to fail-job's
# 60 s timeout (infra/functions.py), well within it. A listing holds them while it reads the rest. Both give
# back what they kept when they end; the hold only matters when a run dies.
HOLD_SECONDS = 15 * 60
LIST_HOLD_SECONDS = 5 * 60
# Long polling: an empty answer then means no visible message, where a short poll may miss some
# ("Amazon SQS short and long polling", docs.aws.amazon.com/AWSSimpleQueueService/latest/
# SQSDeveloperGuide/sqs-short-and-long-polling.html).
WAIT_SECONDS = 1
ERROR_CHARS = 300  # a function error's message as printed: enough to recognize it, never a whole traceback


class Outcome(StrEnum):
    ENDED = "ended"  # fail-job ended the job: FAILED, records dead-lettered, report written
    ALREADY_ENDED = "already-ended"
    NOT_A_JOB = "not-a-job"  # no job by the execution's name: nothing to end
    STILL_FAILING = "still-failing"  # kept in the queue
    UNREADABLE = "unreadable"  # not a Step Functions status-change event: kept for a person to read
    LISTED = "listed"  # --dry-run


KEPT = (Outcome.STILL_FAILING, Outcome.UNREADABLE, Outcome.LISTED)


@dataclass(frozen=True)
class Invocation:
    """What fail-job answered: its response, or the error that kept it from ending the job."""

    response: Mapping[str, Any] | None = None
    error: str | None = None


Invoke = Callable[[Mapping[str, Any]], Invocation]


@dataclass(frozen=True)
class Unended:
    message_id: str
    job_id: str | None
    execution_status: str | None
    outcome: Outcome
    not_delivered_because: str | None  # EventBridge's ERROR_CODE and ERROR_MESSAGE
    error: str | None = None  # this run's, when the job is still not ended


def end_unended_jobs(
    sqs: Any,
    queue_url: str,
    invoke: Invoke,
    *,
    dry_run: bool = False,
    wait_seconds: int = WAIT_SECONDS,
    say: Callable[[Unended], None] = lambda _: None,
) -> list[Unended]:
    """Each message of the safety net's dead-letter queue, invoked (or listed) once; deleted when ended."""
    hold = LIST_HOLD_SECONDS if dry_run else HOLD_SECONDS
    held: list[str] = []  # receipt handles of the messages received and not deleted, given back at the end
    results = []
    try:
        for message in _messages(sqs, queue_url, held, hold=hold, wait_seconds=wait_seconds):
            event, detail = _event(message["Body"])
            result = Unended(
                message_id=message["MessageId"],
                job_id=detail.name if detail else None,
                execution_status=detail.status if detail else None,
                outcome=Outcome.LISTED,
                not_delivered_because=_delivery_error(message.get("MessageAttributes", {})),
            )
            if event is None or detail is None:
                result = _with(result, Outcome.UNREADABLE, "not a Step Functions execution status event")
            elif not dry_run:
                result = _ended(result, invoke(event))
            if result.outcome not in KEPT:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                held.remove(message["ReceiptHandle"])
            results.append(result)
            say(result)
    finally:
        # Also when interrupted or unreachable: what was not done is at once there to do again.
        _give_back(sqs, queue_url, held)
    return results


def _messages(
    sqs: Any, queue_url: str, held: list[str], *, hold: int, wait_seconds: int
) -> Iterator[dict[str, Any]]:
    """Every message once, until the queue shows no visible one; each received is noted in `held`. One seen
    before (a long run outlived its hold) is held again, to be given back, and not done twice."""
    seen: set[str] = set()
    while batch := sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=hold,
        WaitTimeSeconds=wait_seconds,
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        for message in batch:
            held.append(message["ReceiptHandle"])
            if message["MessageId"] not in seen:
                seen.add(message["MessageId"])
                yield message


def _event(body: str) -> tuple[dict[str, Any] | None, ExecutionDetail | None]:
    """The event and its detail, read with the model fail-job reads it with; (None, None) if it is not
    a Step Functions execution status change, as a message put in the queue by hand may not be."""
    from pydantic import ValidationError

    from osbatch.steps.execution_ended import ExecutionStatusEvent, is_execution_status_event

    try:
        event = json.loads(body)
        if isinstance(event, dict) and is_execution_status_event(event):
            return event, ExecutionStatusEvent.model_validate(event).detail
    except (ValueError, ValidationError):
        pass
    return None, None


def _delivery_error(attributes: Mapping[str, Any]) -> str | None:
    parts = [attributes.get(name, {}).get("StringValue") for name in ("ERROR_CODE", "ERROR_MESSAGE")]
    return ": ".join(part for part in parts if part) or None


def _with(result: Unended, outcome: Outcome, error: str | None = None) -> Unended:
    return replace(result, outcome=outcome, error=error)


def _ended(result: Unended, invocation: Invocation) -> Unended:
    from osbatch.steps.execution_ended import Outcome as Ending

    if invocation.error is not None or invocation.response is None:
        return _with(result, Outcome.STILL_FAILING, invocation.error or "no response")
    ending = {
        Ending.FAILED.value: Outcome.ENDED,  # the safety net's step failed the un-ended job
        Ending.ALREADY_ENDED.value: Outcome.ALREADY_ENDED,
        Ending.NOT_A_JOB.value: Outcome.NOT_A_JOB,
    }
    answered = invocation.response.get("outcome")
    if answered not in ending:
        # Not the safety net's answer: the function took the event for something else; keep it.
        return _with(result, Outcome.STILL_FAILING, f"fail-job answered {to_json(invocation.response)}")
    return _with(result, ending[answered])


def _give_back(sqs: Any, queue_url: str, receipt_handles: list[str]) -> None:
    """Kept messages visible again at once, for the alarm, the console and the next run."""
    for start in range(0, len(receipt_handles), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for n, handle in enumerate(receipt_handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


def lambda_invoker(client: Any, function_name: str) -> Invoke:
    """fail-job invoked as EventBridge would, but synchronously (RequestResponse), so its answer is known."""
    from botocore.exceptions import ClientError

    def invoke(event: Mapping[str, Any]) -> Invocation:
        try:
            response = client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        except ClientError as error:  # throttled past the client's retries, not allowed, no such function
            details = error.response.get("Error", {})
            return Invocation(error=f"{details.get('Code')}: {details.get('Message', '')}"[:ERROR_CHARS])
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            # Invoke's documented error payload: errorType and errorMessage (AWS Lambda API Reference,
            # "Invoke", docs.aws.amazon.com/lambda/latest/api/API_Invoke.html); the stack trace stays out.
            found = payload if isinstance(payload, dict) else {}
            text = f"{found.get('errorType', response['FunctionError'])}: {found.get('errorMessage', '')}"
            return Invocation(error=text[:ERROR_CHARS])
        return Invocation(response=payload if isinstance(payload, dict) else {"outcome": payload})

    return invoke


def lambda_client(target: Any) -> Any:
    """Bounded retries: botocore's standard mode retries throttling and transient errors, three attempts in
    all; a read timeout above fail-job's 60 s so a slow invocation is waited for, not sent twice at once
    ("Retries", Boto3 documentation, boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html)."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=120)
    return target.session.client("lambda", endpoint_url=target.endpoint_url, config=config)


def _line(result: Unended) -> str:
    job = result.job_id or f"message {result.message_id}"
    status = f" ({result.execution_status} execution)" if result.execution_status else ""
    why = f"; not delivered: {result.not_delivered_because}" if result.not_delivered_because else ""
    what = {
        Outcome.ENDED: "ended: FAILED, its records dead-lettered, its report written",
        Outcome.ALREADY_ENDED: "already ended; its event is deleted",
        Outcome.NOT_A_JOB: "no such job; its event is deleted",
        Outcome.STILL_FAILING: f"still failing, kept in the queue: {result.error}",
        Outcome.UNREADABLE: f"kept in the queue: {result.error}",
        Outcome.LISTED: "un-ended",
    }[result.outcome]
    return f"{job}{status}: {what}{why if result.outcome in KEPT else ''}"


def end_unended(args: argparse.Namespace) -> int:
    target = _target()
    queue_url = target.output("SweepDlqUrl")
    invoke = lambda_invoker(lambda_client(target), target.output("FailJobFunctionName"))
    say = (lambda _: None) if args.json else (lambda result: print(_line(result)))
    results = end_unended_jobs(target.client("sqs"), queue_url, invoke, dry_run=args.dry_run, say=say)
    if args.json:
        print(to_json([{**asdict(result), "outcome": result.outcome.value} for result in results]))
    elif not results:
        print("no un-ended jobs: the safety net's dead-letter queue is empty")
    else:
        counts = {outcome: sum(r.outcome is outcome for r in results) for outcome in Outcome}
        summary = ", ".join(f"{n} {outcome.value}" for outcome, n in counts.items() if n)
        print(f"{len(results)} un-ended job event(s): {summary}")
    return ExitCode.FAILED if any(r.outcome in KEPT and not args.dry_run for r in results) else ExitCode.OK
