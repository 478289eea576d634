"""A state machine parked on a real task token, as WaitForJob and WaitForSlot park (tests of park-job,
wake-job and the slot wake-up).

moto's SQS waitForTaskToken integration hands the token to the test, as Lambda's would hand it to
park-job, with TimeoutSecondsPath as WaitForJob has.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.helpers import eventually

LONG_WAIT = 3600  # the fallback timeout: only a wake-up can end the wait within a test


class Workflow:
    """One execution parked as WaitForJob parks: woken -> Woken, timed out -> Polled (the fallback)."""

    def __init__(self, sfn: Any, sqs: Any, job_id: str, wait: str = "job") -> None:
        """wait: what the parked task waits for, as WaitForJob ("job") or WaitForSlot ("slot") pass it."""
        self._sfn, self._sqs, self._job_id = sfn, sqs, job_id
        self._queue = sqs.create_queue(QueueName=f"park-requests-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        park = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": self._queue,
                "MessageBody": {"job_id.$": "$.job_id", "token.$": "$$.Task.Token", "wait": wait},
            },
            "TimeoutSecondsPath": "$.poll.wait_seconds",
            "ResultPath": None,
            "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "Polled"}],
            "Next": "Woken",
        }
        definition = {
            "StartAt": "WaitForJob",
            "States": {"WaitForJob": park, "Woken": {"Type": "Succeed"}, "Polled": {"Type": "Succeed"}},
        }
        self._arn = sfn.create_state_machine(
            name=f"jobs-{uuid.uuid4().hex[:8]}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]

    def park(self, wait_seconds: int = LONG_WAIT) -> tuple[str, dict[str, Any]]:
        """Start an execution; returns it and the payload WaitForJob gives park-job (with its token)."""
        execution = self._sfn.start_execution(
            stateMachineArn=self._arn,
            name=uuid.uuid4().hex,
            input=json.dumps({"job_id": self._job_id, "poll": {"wait_seconds": wait_seconds}}),
        )["executionArn"]

        def parked() -> list[dict[str, Any]] | None:
            return self._sqs.receive_message(QueueUrl=self._queue, WaitTimeSeconds=1).get("Messages")

        (message, *_) = eventually(parked, interval=0, what="the execution parked")
        self._sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
        return execution, json.loads(message["Body"])

    def ended_in(self, execution: str) -> str:
        """The state the execution ended in, waiting for it to end (it runs on moto's threads)."""

        def succeeded() -> list[dict[str, Any]] | None:
            events = self._sfn.get_execution_history(executionArn=execution)["events"]
            return events if events[-1]["type"] == "ExecutionSucceeded" else None

        events = eventually(succeeded, timeout=30, interval=0.05, what="the execution's end")
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
        return str(entered[-1])

    def parked_seconds(self, execution: str) -> float:
        """From the park's TaskStateEntered to how it ended, by the execution history's timestamps."""
        events = self._sfn.get_execution_history(executionArn=execution)["events"]
        stamps = {e["type"]: e["timestamp"] for e in events}
        end = stamps.get("TaskTimedOut") or stamps["TaskSucceeded"]
        return float((end - stamps["TaskStateEntered"]).total_seconds())

    def is_waiting(self, execution: str) -> bool:
        return bool(self._sfn.describe_execution(executionArn=execution)["status"] == "RUNNING")
