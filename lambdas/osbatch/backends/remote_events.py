"""The EventBridge state-change events of the services whose jobs osbatch runs, each named once.

SageMaker and Bedrock put an event on the account's default bus whenever one of their jobs changes state;
osbatch's wake rules (infra/wake.py) match the terminal ones of its own jobs, the wake-job function reads
them (steps/park_job.py and steps/wake_job.py), and the local emulators emit them in the same shape
(local/emulators/state_events.py).

- SageMaker: source `aws.sagemaker`, detail-type `SageMaker Transform Job State Change`; `detail` is the
  DescribeTransformJob response (TransformJobName, TransformJobArn, TransformJobStatus, FailureReason, ...).
  https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html#eventbridge-transform
- Bedrock: source `aws.bedrock`, detail-type `Batch Inference Job State Change`; `detail` holds version,
  accountId, batchJobName, batchJobArn, batchModelId, status, failureMessage, creationTime.
  https://docs.aws.amazon.com/bedrock/latest/userguide/monitoring-eventbridge-how-it-works.html
OpenAI has no such events (its Batch API is polled), so its jobs are only ever woken by the poll timeout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from osbatch.backends import bedrock, sagemaker
from osbatch.contracts import REMOTE_JOB_PREFIX
from osbatch.models import JobStateName


@dataclass(frozen=True)
class StateChangeEvent:
    source: str
    detail_type: str
    name_field: str  # the remote job's name in `detail`
    status_field: str
    statuses: Mapping[str, JobStateName]  # the service's status vocabulary (the backend's STATUS_MAP)

    @property
    def terminal_statuses(self) -> list[str]:
        return [raw for raw, state in self.statuses.items() if state.terminal]

    def matches(self, source: str, detail_type: str) -> bool:
        return (source, detail_type) == (self.source, self.detail_type)


SAGEMAKER_TRANSFORM = StateChangeEvent(
    source="aws.sagemaker",
    detail_type="SageMaker Transform Job State Change",
    name_field="TransformJobName",
    status_field="TransformJobStatus",
    statuses=sagemaker.STATUS_MAP,
)
BEDROCK_BATCH = StateChangeEvent(
    source="aws.bedrock",
    detail_type="Batch Inference Job State Change",
    name_field="batchJobName",
    status_field="status",
    statuses=bedrock.STATUS_MAP,
)
STATE_CHANGE_EVENTS = (SAGEMAKER_TRANSFORM, BEDROCK_BATCH)

# A job id is `<pipeline>-<16 hex>` (models.job_id_for); a remote job name is REMOTE_JOB_PREFIX + job id,
# possibly followed by `-<part>` when one upload runs several remote jobs.
_JOB_ID_END = re.compile(r"-[0-9a-f]{16}(?=-|$)")


def job_id_candidates(remote_name: str) -> list[str]:
    """The job ids a remote job name can belong to, longest first; [] for a name osbatch never makes.

    Usually exactly one; a pipeline name that itself contains a 16-hex segment gives more, and the job
    table decides (the caller takes the first that exists)."""
    if not remote_name.startswith(REMOTE_JOB_PREFIX):
        return []
    rest = remote_name.removeprefix(REMOTE_JOB_PREFIX)
    return [rest[: match.end()] for match in reversed(list(_JOB_ID_END.finditer(rest)))]
