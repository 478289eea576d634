"""ExecutionEnded: the safety net under FailJob, for executions that end without running it.

FailJob runs from the workflow's Catch clauses only. An execution that times out (the state machine's
TimeoutSeconds), is stopped (StopExecution) or fails where no Catch applies (FailJob itself throttled or
failing past its retrier) would leave its job un-ended and its records in no report. Step Functions puts a
status-change event on EventBridge when an execution ends (contracts.EXECUTION_STATUS_CHANGE); a rule sends
the FAILED, TIMED_OUT and ABORTED ones here, and this step fails the job as FailJob would: records
dead-lettered with what happened, remote jobs stopped, slot released, report and completion event.

A job that already ended is left alone: FailJob's own path ends in a Fail state, so every job it failed
comes back here as a FAILED execution, and EventBridge may deliver an event more than once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from osbatch.contracts import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE
from osbatch.dal import JobTable
from osbatch.models import JobState, JobStateName, SourceObject
from osbatch.s3uri import split_s3_uri

# Newest first: the events of GetExecutionHistory (reverseOrder=True), as the API returns them.
History = Callable[[str], Iterable[Mapping[str, Any]]]
FailJob = Callable[[JobState], object]

# Where a history event carries a state's JSON: the last state's output, or its input when it never
# exited, or the execution's input (AWS Step Functions API Reference, "HistoryEvent").
STATE_DOCUMENTS = (
    ("stateExitedEventDetails", "output"),
    ("stateEnteredEventDetails", "input"),
    ("executionStartedEventDetails", "input"),
)
# The error FailJob records for each way of ending, when the event names none.
ERRORS = {
    "TIMED_OUT": ("States.Timeout", "the execution ran past the state machine's TimeoutSeconds"),
    "ABORTED": ("ExecutionAborted", "the execution was stopped (StopExecution)"),
    "FAILED": ("States.Runtime", "the execution failed where no Catch applies"),
}


class Outcome(StrEnum):
    FAILED = "failed"  # the job was un-ended: FailJob's step ran for it
    ALREADY_ENDED = "already-ended"
    NOT_A_JOB = "not-a-job"  # no job item by the execution's name


class ExecutionDetail(BaseModel):
    """The `detail` of a Step Functions Execution Status Change event (the fields used here)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str
    status: str
    input: str | None = None
    error: str | None = None
    cause: str | None = None


class ExecutionStatusEvent(EventBridgeModel):
    detail: ExecutionDetail


def is_execution_status_event(event: Mapping[str, Any]) -> bool:
    return (
        event.get("source") == EXECUTION_STATUS_SOURCE and event.get("detail-type") == EXECUTION_STATUS_CHANGE
    )


def execution_ended(
    detail: ExecutionDetail, *, jobs: JobTable, history: History, fail: FailJob
) -> tuple[Outcome, JobState | None]:
    """Fail the execution's job unless it already ended; the state it was failed from, if it was."""
    job_id = detail.name  # Submit and batch-ingest name each execution after its job
    item = jobs.get(job_id)
    if item is None:
        return Outcome.NOT_A_JOB, None
    if JobStateName(item["state"]).terminal:
        return Outcome.ALREADY_ENDED, None
    state = (
        latest_job_state(history(detail.execution_arn), job_id)
        or _parsed(detail.input, job_id)
        or _from_item(item, job_id)
    )
    error, why = ERRORS.get(detail.status, ERRORS["FAILED"])
    cause = f"{why}: {detail.cause}" if detail.cause else why
    failed = state.model_copy(update={"error": {"Error": detail.error or error, "Cause": cause}})
    fail(failed)
    return Outcome.FAILED, failed


def latest_job_state(events: Iterable[Mapping[str, Any]], job_id: str) -> JobState | None:
    """The newest JobState the history holds: every task state takes and returns the whole JobState, so
    the last one entered or exited is what the job had reached (a Map's children have histories of their
    own and report through the job table)."""
    # Newest first by event id too, whatever order the API gave (moto ignores reverseOrder).
    for event in sorted(events, key=lambda event: int(event.get("id", 0)), reverse=True):
        for details, field in STATE_DOCUMENTS:
            state = _parsed((event.get(details) or {}).get(field), job_id)
            if state is not None:
                return state
    return None


def _parsed(text: Any, job_id: str) -> JobState | None:
    if not isinstance(text, str):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("job_id") != job_id:
        return None  # a WaitForJob payload, a Choice's input cut short, another job's document
    try:
        return JobState.model_validate(document)
    except ValidationError:
        return None


def _from_item(item: Mapping[str, Any], job_id: str) -> JobState:
    """Without a history or an input (both are capped in size), the job item names the upload."""
    bucket, key = split_s3_uri(str(item["source"]))
    source = SourceObject(
        bucket=bucket, key=key, etag=str(item.get("etag", "")), size=int(item.get("size", 0))
    )
    return JobState(job_id=job_id, pipeline=str(item["pipeline"]), source=source)
