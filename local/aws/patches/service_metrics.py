"""The SQS and Step Functions metrics AWS publishes, which the stack's dashboard charts (local/aws/metrics.py
stores them).

- SQS: NumberOfMessagesSent and SentMessageSize on every send, NumberOfMessagesDeleted on every delete;
  ApproximateNumberOfMessagesVisible and ApproximateAgeOfOldestMessage for every queue, sampled as SQS
  does for active queues (every `GAUGE_SECONDS` here rather than every minute).
- Step Functions: ExecutionsStarted when an execution appears, ExecutionsSucceeded / Failed / Aborted /
  TimedOut (1 for its end, 0 for the others) and ExecutionTime (milliseconds) when it ends, per
  StateMachineArn; read by the same sampler
  from moto's executing backend, so no engine internals are patched.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from moto.sqs.models import SQSBackend, sqs_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local.aws import metrics

LOG = logging.getLogger(__name__)

GAUGE_SECONDS = 5.0
# An execution's end status -> the metric Step Functions counts it in.
ENDED = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "ABORTED": "ExecutionsAborted",
    "TIMED_OUT": "ExecutionsTimedOut",
}


def _send_message(self: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
    message = _original_send(self, queue_name, message_body, *args, **kwargs)
    dimensions = {"QueueName": queue_name}
    metrics.put(
        metrics.SQS,
        self.account_id,
        self.region_name,
        [
            metrics.datum("NumberOfMessagesSent", 1, dimensions),
            metrics.datum("SentMessageSize", len(message_body.encode()), dimensions, "Bytes"),
        ],
    )
    return message


def _delete_message(self: SQSBackend, queue_name: str, receipt_handle: str) -> None:
    _original_delete(self, queue_name, receipt_handle)
    metrics.put(
        metrics.SQS,
        self.account_id,
        self.region_name,
        [metrics.datum("NumberOfMessagesDeleted", 1, {"QueueName": queue_name})],
    )


class Sampler:
    """Queue gauges and execution starts and ends, every GAUGE_SECONDS."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}  # execution ARN -> status last counted

    def sample(self) -> None:
        for queues in list(sqs_backends.values()):
            for backend in list(queues.values()):
                self._queues(backend)
        for machines in list(stepfunctions_parser_backends.values()):
            for executing in list(machines.values()):
                self._executions(executing)

    def _queues(self, backend: SQSBackend) -> None:
        now_ms = time.time() * 1000
        for name, queue in list(backend.queues.items()):
            messages = list(queue._messages)
            oldest = min((m.sent_timestamp or now_ms for m in messages), default=now_ms)
            dimensions = {"QueueName": name}
            metrics.put(
                metrics.SQS,
                backend.account_id,
                backend.region_name,
                [
                    metrics.datum(
                        "ApproximateNumberOfMessagesVisible", queue.approximate_number_of_messages, dimensions
                    ),
                    metrics.datum(
                        "ApproximateAgeOfOldestMessage", (now_ms - oldest) / 1000, dimensions, "Seconds"
                    ),
                ],
            )

    def _executions(self, backend: Any) -> None:
        for machine in list(backend.state_machines):
            for execution in list(getattr(machine, "executions", [])):
                self._execution(backend, machine, execution)

    def _execution(self, backend: Any, machine: Any, execution: Any) -> None:
        arn = str(execution.exec_arn)
        status = str(getattr(execution.exec_status, "value", execution.exec_status) or "RUNNING")
        before = self._seen.get(arn)
        if before == status:
            return
        self._seen[arn] = status
        dimensions = {"StateMachineArn": str(machine.arn)}
        data = [] if before is not None else [metrics.datum("ExecutionsStarted", 1, dimensions)]
        if status in ENDED:
            # 1 for how it ended and 0 for the other ends, so a rate of failures reads 0, not "no data".
            data += [metrics.datum(name, int(end == status), dimensions) for end, name in ENDED.items()]
            started = execution.start_date
            if started is not None:
                ended = execution.stop_date or datetime.now(started.tzinfo or UTC)
                elapsed = (ended - started).total_seconds() * 1000
                data.append(metrics.datum("ExecutionTime", elapsed, dimensions, "Milliseconds"))
        if data:
            metrics.put(metrics.STATES, backend.account_id, backend.region_name, data)

    def run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                LOG.exception("sampling the local services' metrics failed")
            time.sleep(GAUGE_SECONDS)


_original_send = SQSBackend.send_message
_original_delete = SQSBackend.delete_message


def install() -> None:
    SQSBackend.send_message = _send_message  # type: ignore[method-assign]
    SQSBackend.delete_message = _delete_message  # type: ignore[method-assign]
    threading.Thread(target=Sampler().run, name="service-metrics", daemon=True).start()
