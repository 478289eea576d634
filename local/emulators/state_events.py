"""The state-change events SageMaker and Bedrock put on the account's default bus, emitted by the emulators.

Same source, detail-type and detail shape as the services (osbatch.backends.remote_events cites the AWS
pages), put through moto's EventBridge, so the deployed rules route them to the real wake-job function as on
AWS. As there, an event is sent after the state is visible to Describe/Get calls, and a delivery problem never
affects the job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from moto.events.models import events_backends

from osbatch.backends.remote_events import BEDROCK_BATCH, SAGEMAKER_TRANSFORM, StateChangeEvent

LOG = logging.getLogger(__name__)
DEFAULT_BUS = "default"
# DescribeTransformJob's fields that the documented event carries, in its order.
TRANSFORM_FIELDS = (
    "TransformJobName", "TransformJobArn", "TransformJobStatus", "FailureReason", "ModelName",
    "MaxConcurrentTransforms", "MaxPayloadInMB", "BatchStrategy", "Environment", "TransformInput",
    "TransformOutput", "TransformResources", "CreationTime", "TransformStartTime", "TransformEndTime",
)  # fmt: skip


def put_state_change(event: StateChangeEvent, arn: str, detail: Mapping[str, Any]) -> None:
    """Put one event on the default bus of the account and region the job's ARN names."""
    _, _, _, region, account_id, _ = arn.split(":", 5)
    entry = {
        "Source": event.source,
        "DetailType": event.detail_type,
        "Detail": json.dumps(detail),
        "Resources": [arn],
        "EventBusName": DEFAULT_BUS,
    }
    try:
        events_backends[account_id][region].put_events([entry])
    except Exception:  # asynchronous on AWS: the job goes on whatever happens to its event
        LOG.exception("could not put the %s event of %s", event.detail_type, arn)


def transform_job_detail(describe: Mapping[str, Any], tags: Any) -> dict[str, Any]:
    """The detail of `SageMaker Transform Job State Change`: DescribeTransformJob's fields, times as
    ISO 8601 UTC, FailureReason only for a failed job, Tags as a map."""
    detail = {name: _plain(describe[name]) for name in TRANSFORM_FIELDS if describe.get(name) is not None}
    if describe.get("TransformJobStatus") != "Failed":
        detail.pop("FailureReason", None)
    # CreateTransformJob takes a list of {Key, Value}; moto may keep either form.
    detail["Tags"] = dict(tags) if isinstance(tags, Mapping) else {t["Key"]: t["Value"] for t in tags or []}
    return detail


def batch_job_detail(
    *, name: str, arn: str, model_id: str, status: str, message: str | None, submitted: dt.datetime
) -> dict[str, Any]:
    """The detail of `Batch Inference Job State Change`, as Bedrock's sample event has it."""
    _, _, _, _, account_id, _ = arn.split(":", 5)
    return {
        "version": "0.0",
        "accountId": account_id,
        "batchJobName": name,
        "batchJobArn": arn,
        "batchModelId": model_id,
        "status": status,
        "failureMessage": message or "",
        # The sample's format: "Aug 28, 2024, 10:47:53 PM".
        "creationTime": submitted.strftime("%b %d, %Y, %I:%M:%S %p"),
    }


def put_transform_job_event(describe: Mapping[str, Any], tags: Any) -> None:
    put_state_change(
        SAGEMAKER_TRANSFORM, str(describe["TransformJobArn"]), transform_job_detail(describe, tags)
    )


def put_batch_job_event(**fields: Any) -> None:
    put_state_change(BEDROCK_BATCH, str(fields["arn"]), batch_job_detail(**fields))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value
