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

GetExecutionHistory, which the safety net reads, is patched too: moto failed to serialize the history of
an execution that had passed WaitForJob (see HISTORY_EVENT).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from botocore.session import get_session
from moto.events.models import events_backends
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend import execution as moto_execution

from osbatch.contracts import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE

LOG = logging.getLogger(__name__)

_terminated = moto_execution.BaseExecutionWorkerCommunication.terminated
_stop = moto_execution.Execution.stop
_history_output = moto_execution.Execution.to_history_output
# The API's own shape of a history event (botocore's service model): moto records a non-number in some
# integer field of the history of an execution that passed WaitForJob, and GetExecutionHistory then fails to
# serialize it (a 500, "int() argument must be ... not 'dict'").
HISTORY_EVENT = get_session().get_service_model("stepfunctions").shape_for("HistoryEvent")
INTEGERS = frozenset({"integer", "long"})


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


def _stop_noted(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
    self.stop_requested = True
    _stop(self, stop_date, error, cause)


def _terminated_and_announced(self: Any) -> None:
    _terminated(self)
    execution = self.execution
    if getattr(execution, "stop_requested", False) and execution.exec_status.value != "SUCCEEDED":
        # moto ends an execution stopped inside a waitForTaskToken task FAILED (States.Timeout): the
        # StopExecution API Reference says a stopped execution is ABORTED.
        execution.exec_status = type(execution.exec_status).ABORTED
        execution.error = execution.cause = None  # the timeout moto saw is not what happened
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


def without_bad_integers(value: dict[str, Any], shape: Any) -> None:
    """Drop, in place, each integer member of `shape` whose value is not a number."""
    for name, member in shape.members.items():
        if name not in value:
            continue
        if member.type_name in INTEGERS and not isinstance(value[name], int | float):
            LOG.warning("history event field %s: %r is not an integer; left out", name, value[name])
            del value[name]
        elif member.type_name == "structure" and isinstance(value[name], dict):
            without_bad_integers(value[name], member)


def _history_that_serializes(self: Any) -> Any:
    output = _history_output(self)
    for event in output.get("events", []):
        without_bad_integers(event, HISTORY_EVENT)  # type: ignore[arg-type]
    return output


def install() -> None:
    moto_execution.Execution.to_history_output = _history_that_serializes  # type: ignore[method-assign]
    moto_execution.Execution.stop = _stop_noted  # type: ignore[method-assign]
    moto_execution.BaseExecutionWorkerCommunication.terminated = _terminated_and_announced  # type: ignore[method-assign]
