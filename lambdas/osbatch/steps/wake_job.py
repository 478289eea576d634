"""WakeJob: a remote job's terminal state-change event resumes its job's parked WaitForJob at once.

It runs for each terminal state-change event of one of osbatch's remote jobs (backends/remote_events.py),
notes the finish on the job item and sends the parked task's token (steps/park_job.py says how the two
halves meet), so PollJob runs at once instead of at the poll timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from osbatch.backends.remote_events import STATE_CHANGE_EVENTS, job_id_candidates
from osbatch.dal import Wakeups
from osbatch.steps.support.resume import Outcome, resume

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

__all__ = ["Outcome", "RemoteJobEvent", "wake"]


class RemoteJobEvent(EventBridgeModel):
    """A state-change event as EventBridge delivers it; `detail` is the service's own (remote_events.py)."""

    detail: dict[str, Any]


def wake(
    source: str, detail_type: str, detail: Mapping[str, Any], *, wakeups: Wakeups, sfn: SFNClient
) -> tuple[Outcome, str | None]:
    """The outcome and the job id the event belongs to (None when it belongs to none)."""
    spec = next((s for s in STATE_CHANGE_EVENTS if s.matches(source, detail_type)), None)
    if spec is None or detail.get(spec.status_field) not in spec.terminal_statuses:
        return Outcome.IGNORED, None  # the rules pass only terminal events; SageMaker may repeat others
    name = str(detail.get(spec.name_field, ""))
    # Another stack in the account names its jobs with the same prefix: its events are not ours.
    job_id = next((c for c in job_id_candidates(name) if wakeups.job_exists(c)), None)
    if job_id is None or not wakeups.note_finished(job_id, [name]):
        return Outcome.IGNORED, None
    return resume(job_id, wakeups, sfn), job_id
