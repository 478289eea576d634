"""The safety net under FailJob: an execution that timed out, was stopped or failed past every Catch
fails its job, once, from the newest JobState its history holds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from osbatch.dal import JobTable
from osbatch.models import JobState, JobStateName, JobStatus, Prepared, RemoteJob
from osbatch.steps.execution_ended import (
    ExecutionDetail,
    ExecutionStatusEvent,
    Outcome,
    execution_ended,
    is_execution_status_event,
    latest_job_state,
)
from osbatch.steps.fail_job import fail_job
from osbatch.steps.support.report import JobReport
from tests.unit.fake_backend import ScriptedBackend
from tests.unit.helpers import JOB, SOURCE, job_store

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:osbatch-jobs"
EXECUTION = f"arn:aws:states:eu-west-1:123456789012:execution:osbatch-jobs:{JOB}"
REMOTE = RemoteJob(id="osb-msmarco-1", arn="arn:job", output_uri="s3://osb-out/jobs/msmarco-1/output/")


def submitted() -> JobState:
    return JobState(job_id=JOB, pipeline="msmarco", source=SOURCE)


def running() -> JobState:
    """Prepared (10 lines, 1 bad) and its remote job running: what WaitForJob holds while it waits."""
    prepared = Prepared(
        input_uri="s3://osb-out/jobs/msmarco-1/input/", parts=1, records_in=10, valid=9, dead_lettered=1
    )
    return submitted().model_copy(
        update={
            "prepared": prepared,
            "remotes": [REMOTE],
            "status": JobStatus(state=JobStateName.RUNNING),
        }
    )


def history(*states: JobState) -> list[dict[str, Any]]:
    """A history, newest first: the execution started with the first state, then each state entered and
    exited PollJob; the newest entered WaitForJob, whose payload is not a JobState, and never exited."""
    events: list[dict[str, Any]] = [
        {"type": "TaskScheduled", "taskScheduledEventDetails": {"parameters": json.dumps({"job_id": JOB})}},
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "WaitForJob", "input": "{}"}},
    ]
    for state in reversed(states[1:]):
        events.append(
            {"type": "TaskStateExited", "stateExitedEventDetails": {"output": json.dumps(state.dump())}}
        )
        events.append(
            {"type": "TaskStateEntered", "stateEnteredEventDetails": {"input": json.dumps(state.dump())}}
        )
    events.append(
        {"type": "ExecutionStarted", "executionStartedEventDetails": {"input": json.dumps(states[0].dump())}}
    )
    return events


def detail(status: str, **fields: Any) -> ExecutionDetail:
    return ExecutionDetail.model_validate(
        {"executionArn": EXECUTION, "stateMachineArn": MACHINE, "name": JOB, "status": status, **fields}
    )


class FailJobRecorder:
    """FailJob's step for real, over the moto table and buckets; keeps what it was called with."""

    def __init__(self, jobs: JobTable, s3: Any, backend: ScriptedBackend) -> None:
        self.jobs, self.s3, self.backend = jobs, s3, backend
        self.states: list[JobState] = []
        self.reports: list[JobReport] = []
        self.published: list[dict[str, Any]] = []

    def __call__(self, state: JobState) -> JobState:
        self.states.append(state)
        result, report = fail_job(
            state, backend=self.backend, store=job_store(self.jobs, self.s3), publish=self.published.append
        )
        self.reports.append(report)
        return result


@pytest.fixture
def job(jobs: JobTable) -> JobTable:
    jobs.create(JOB, "msmarco", SOURCE)
    return jobs


@pytest.fixture
def failer(job: JobTable, s3: Any) -> FailJobRecorder:
    return FailJobRecorder(job, s3, ScriptedBackend())


def run(event: ExecutionDetail, jobs: JobTable, failer: FailJobRecorder, events: Iterable[Mapping[str, Any]]):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    def read_history(arn: str) -> Iterable[Mapping[str, Any]]:
        asked.append(arn)
        return events

    outcome, state = execution_ended(event, jobs=jobs, history=read_history, fail=failer)
    return outcome, state, asked


def test_a_timed_out_execution_fails_its_job_and_dead_letters_every_record(
    job: JobTable, s3: Any, failer: FailJobRecorder
) -> None:
    # Given an execution that timed out while its remote job ran (10 lines, 1 already a parse dead letter)
    event = detail("TIMED_OUT", error="States.Timeout", cause=None)
    # When the status-change event arrives
    outcome, state, asked = run(event, job, failer, history(submitted(), running()))
    # Then the job is failed from the newest JobState in the history, with the timeout as its reason
    assert outcome is Outcome.FAILED and asked == [EXECUTION]
    assert state is not None and state.prepared is not None and state.prepared.valid == 9
    (report,) = failer.reports
    assert (
        report.state == "FAILED" and report.reason is not None and report.reason.startswith("States.Timeout")
    )
    # And the counts add up: 1 parse dead letter + the 9 valid records in one file-level letter
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (10, 0, 10, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/inference/00000.jsonl")["Body"].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert letter["record"]["records"] == 9 and "States.Timeout" in letter["reason"]
    # And its remote job is stopped, the job item ended, the completion event published
    assert failer.backend.cancelled == [REMOTE.id]
    assert job.get(JOB)["state"] == "FAILED"  # type: ignore[index]
    assert [event["state"] for event in failer.published] == ["FAILED"]


def test_an_aborted_execution_names_the_stop_and_its_cause(job: JobTable, failer: FailJobRecorder) -> None:
    # Given an execution stopped by an operator, with a cause
    event = detail("ABORTED", cause="operator: wrong file")
    # When its event arrives
    run(event, job, failer, history(submitted(), running()))
    # Then the reason says it was stopped, and why
    (state,) = failer.states
    assert state.error == {
        "Error": "ExecutionAborted",
        "Cause": "the execution was stopped (StopExecution): operator: wrong file",
    }
    assert failer.reports[0].reason == state.error["Error"] + ": " + state.error["Cause"]


def test_a_repeated_event_and_fail_jobs_own_failed_execution_leave_the_job_alone(
    job: JobTable, failer: FailJobRecorder
) -> None:
    # Given a job the safety net already failed
    run(detail("TIMED_OUT"), job, failer, history(submitted(), running()))
    ended = job.get(JOB)
    # When the same event is delivered again, and FailJob's own path ends an execution FAILED
    again, _, asked_again = run(detail("TIMED_OUT"), job, failer, history(submitted(), running()))
    failed, _, asked_failed = run(detail("FAILED", error="JobFailed"), job, failer, [])
    # Then nothing runs a second time: one report, one event, the job item as it was
    assert (again, failed) == (Outcome.ALREADY_ENDED, Outcome.ALREADY_ENDED)
    assert asked_again == asked_failed == []
    assert len(failer.reports) == len(failer.published) == 1
    assert job.get(JOB) == ended


def test_a_completed_job_is_not_failed_by_a_late_event(job: JobTable, failer: FailJobRecorder) -> None:
    # Given a job that Finalize completed
    job.update(JOB, JobStateName.COMPLETED)
    # When an ABORTED event arrives for its execution
    outcome, _, _ = run(detail("ABORTED"), job, failer, history(submitted(), running()))
    # Then it stays completed
    assert outcome is Outcome.ALREADY_ENDED and failer.states == []
    assert job.get(JOB)["state"] == "COMPLETED"  # type: ignore[index]


def test_an_execution_of_no_job_is_ignored(jobs: JobTable, s3: Any) -> None:
    # Given no job item by the execution's name
    failer = FailJobRecorder(jobs, s3, ScriptedBackend())
    # When its event arrives
    outcome, _, _ = run(detail("FAILED"), jobs, failer, [])
    # Then nothing is failed
    assert outcome is Outcome.NOT_A_JOB and failer.states == []


def test_without_a_history_the_execution_input_and_then_the_job_item_name_the_job(
    job: JobTable, failer: FailJobRecorder
) -> None:
    # Given an execution whose history holds no JobState (e.g. cut short)
    with_input = detail("FAILED", input=json.dumps(submitted().dump()), cause="States.Runtime in FailJob")
    # When events arrive, with and without the execution's input
    run(with_input, job, failer, [])
    job.update(JOB, JobStateName.RUNNING)  # as if un-ended again
    run(detail("FAILED"), job, failer, [])
    # Then the job is failed from the input, and from the job item, naming the same upload
    assert [state.source.uri for state in failer.states] == [SOURCE.uri, SOURCE.uri]
    assert failer.states[0].error == {
        "Error": "States.Runtime",
        "Cause": "the execution failed where no Catch applies: States.Runtime in FailJob",
    }


def test_the_newest_job_state_wins_whatever_order_the_history_comes_in() -> None:
    # Given a history oldest first, its events numbered as the API numbers them
    events = list(reversed(history(submitted(), running())))
    numbered = [{**event, "id": n} for n, event in enumerate(events, start=1)]
    # When the latest JobState is read
    # Then it is the newest by id, not the first listed
    assert latest_job_state(numbered, JOB) == running()


def test_the_newest_job_state_wins_and_other_documents_are_skipped() -> None:
    # Given a history, newest first, whose newest documents are not JobStates or are another job's
    other = submitted().model_copy(update={"job_id": "msmarco-2"})
    events = [
        {"stateEnteredEventDetails": {"input": "not json"}},
        {"stateEnteredEventDetails": {"input": json.dumps(other.dump())}},
        *history(submitted(), running()),
    ]
    # When the latest JobState is read
    state = latest_job_state(events, JOB)
    # Then it is this job's newest one
    assert state == running()


def test_only_step_functions_status_changes_take_the_safety_net_entry() -> None:
    # Given an EventBridge status-change event as documented, and a JobState from a Catch
    event = {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T03:00:00Z",
        "region": "eu-west-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": MACHINE,
            "name": JOB,
            "status": "TIMED_OUT",
            "startDate": 1551225014968,
            "stopDate": 1551225017576,
            "input": "{}",
            "output": None,
            "error": "States.Timeout",
            "cause": None,
        },
    }
    # Then only the event takes the safety net's entry, and it parses
    assert is_execution_status_event(event)
    assert not is_execution_status_event(submitted().dump())
    assert ExecutionStatusEvent.model_validate(event).detail.status == "TIMED_OUT"


def test_a_job_that_died_waiting_for_a_slot_leaves_the_queue_at_once(
    job: JobTable, failer: FailJobRecorder
) -> None:
    # Given a job queued for a job slot (none free), whose execution then timed out
    assert not job.acquire_slot("msmarco", JOB, limit=0, now=1000.0)
    assert job.next_waiters("msmarco", limit=1, now=1000.0) == [JOB]
    # When its status-change event arrives
    run(detail("TIMED_OUT"), job, failer, history(submitted()))
    # Then its ticket is gone now, not after the 30 minutes a ticket takes to count as abandoned
    assert job.next_waiters("msmarco", limit=1, now=1000.0) == []
