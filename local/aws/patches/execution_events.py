"""Step Functions -> EventBridge: an execution that ends sends `Step Functions Execution Status Change` to
the default bus, as Step Functions does for Standard workflows ("Automating Step Functions event delivery
with EventBridge", https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html).

moto 5.2.5's executing Step Functions sends no events. The patch hooks the point where an execution's end
is recorded (`BaseExecutionWorkerCommunication.terminated`, on the execution's own thread, also after
StopExecution) and puts the event with the documented `detail`: executionArn, stateMachineArn, name, status,
startDate and stopDate (epoch milliseconds), input and output (JSON text), inputDetails/outputDetails,
error and cause. Every end is sent (SUCCEEDED, FAILED, TIMED_OUT, ABORTED), as on AWS; the safety-net rule
(infra/sweep.py) takes the FAILED, TIMED_OUT and ABORTED ones. RUNNING is not sent: nothing here uses it.
moto's StopExecution drops the request's error and cause, so an ABORTED event carries none
(steps/execution_ended.py then names the stop itself).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from moto.events.models import events_backends
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend import execution as moto_execution

from osbatch.contracts import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE

LOG = logging.getLogger(__name__)

_terminated = moto_execution.BaseExecutionWorkerCommunication.terminated


def _millis(stamp: Any) -> int | None:
    return int(stamp.timestamp() * 1000) if isinstance(stamp, datetime.datetime) else None


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def status_change_detail(execution: Any) -> dict[str, Any]:
    """The event's `detail` for an ended execution (the fields the AWS page shows)."""
    error, cause = execution.error, execution.cause
    worker = execution.exec_worker
    state = worker.env.program_state() if worker is not None and worker.env is not None else None
    if isinstance(state, ProgramStopped):  # StopExecution's error and cause
        error, cause = state.error, state.cause
    output = _json_text(execution.output)
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": execution.exec_status.value,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": _json_text(execution.input_data),
        "output": output,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
        "error": error,
        "cause": cause,
    }


def _terminated_and_announced(self: Any) -> None:
    _terminated(self)
    execution = self.execution
    try:
        entry = {
            "Source": EXECUTION_STATUS_SOURCE,
            "DetailType": EXECUTION_STATUS_CHANGE,
            "Detail": json.dumps(status_change_detail(execution)),
            "Resources": [execution.exec_arn],
            "EventBusName": "default",
        }
        events_backends[execution.account_id][execution.region_name].put_events([entry])
    except Exception:  # asynchronous on AWS: a delivery problem never changes the execution's end
        LOG.exception("could not announce the end of %s", execution.exec_arn)


def install() -> None:
    moto_execution.BaseExecutionWorkerCommunication.terminated = _terminated_and_announced  # type: ignore[method-assign]
