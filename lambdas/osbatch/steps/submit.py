"""Submit: turn one S3 `Object Created` event into one job workflow execution, exactly once.

The job id is derived from bucket/key/etag and the execution is named after it, so a redelivered event,
a replayed queue or a second upload of the same bytes starts nothing new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, SqsRecordModel
from botocore.exceptions import ClientError
from pydantic import Field, Json

from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.models import JobState, SourceObject, job_id_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

# Objects that share an input prefix but are not input: SageMaker manifests and transform outputs.
IGNORED_SUFFIXES = (".manifest", ".out")


class ObjectCreatedEvent(S3EventNotificationEventBridgeModel):
    """What the trigger's rules deliver: S3 `Object Created` on EventBridge. Anything else is misrouted."""

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")


class ObjectCreatedRecord(SqsRecordModel):
    """One submit queue message. A body that fails validation fails only its own record, which SQS
    redelivers and after `maxReceiveCount` moves to the dead-letter queue."""

    body: Json[ObjectCreatedEvent]


@dataclass(frozen=True)
class SubmitOutcome:
    job_id: str | None
    started: bool
    detail: str


def source_from_event(event: ObjectCreatedEvent) -> SourceObject:
    """The object an event announces, as the event saw it (resolve_object reads what it is now)."""
    announced = event.detail.object
    return SourceObject(
        bucket=event.detail.bucket.name,
        key=announced.key,
        etag=announced.etag,
        size=int(announced.size or 0),
    )


def resolve_object(s3: S3Client, source: SourceObject) -> SourceObject | None:
    """The object as it is now, or None if it is gone (deleted before we got to it).

    S3 URL-encodes keys in notification events (a space arrives as '+'); whether an event did is not
    knowable from the event alone, so the key is tried as given and then decoded.
    """
    for key in dict.fromkeys([source.key, unquote_plus(source.key)]):
        try:
            head = s3.head_object(Bucket=source.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}:
                continue
            raise
        etag = str(head.get("ETag", source.etag)).strip('"')
        return SourceObject(bucket=source.bucket, key=key, etag=etag, size=int(head["ContentLength"]))
    return None


def pipeline_for(key: str, pipelines: dict[str, PipelineConfig]) -> PipelineConfig | None:
    """The pipeline with the longest matching prefix, so nested prefixes route to the most specific one."""
    matches = [
        config
        for config in pipelines.values()
        if key.startswith(config.source.prefix) and key.endswith(config.source.suffix)
    ]
    return max(matches, key=lambda config: len(config.source.prefix), default=None)


@dataclass(frozen=True)
class Workflow:
    """The job workflow's state machine, which Submit starts one execution of per job."""

    sfn: SFNClient
    state_machine_arn: str


def submit_object(
    source: SourceObject,
    *,
    pipelines: dict[str, PipelineConfig],
    jobs: JobTable,
    s3: S3Client,
    workflow: Workflow,
) -> SubmitOutcome:
    if source.key.endswith(IGNORED_SUFFIXES):
        return SubmitOutcome(None, False, f"ignored {source.uri}: not an input object")
    config = pipeline_for(source.key, pipelines)
    if config is None:
        return SubmitOutcome(
            None, False, f"ignored {source.uri}: no pipeline has a matching prefix and suffix"
        )

    current = resolve_object(s3, source)
    if current is None:
        return SubmitOutcome(None, False, f"ignored {source.uri}: the object no longer exists")
    source = current
    job_id = job_id_for(config.name, source.bucket, source.key, source.etag)
    state = JobState(job_id=job_id, pipeline=config.name, source=source)
    if not jobs.create(job_id, config.name, source):
        existing = jobs.get(job_id) or {}
        if existing.get("execution_arn"):
            return SubmitOutcome(job_id, False, f"job {job_id} already started for {source.uri}")
    try:
        # StartExecution with the same name and input as a running execution succeeds without starting
        # another; a closed one raises ExecutionAlreadyExists. Either way one execution per job.
        started = workflow.sfn.start_execution(
            stateMachineArn=workflow.state_machine_arn, name=job_id, input=json.dumps(state.dump())
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return SubmitOutcome(job_id, False, f"job {job_id} already ran for {source.uri}")
        raise
    jobs.update(job_id, execution_arn=started["executionArn"])
    return SubmitOutcome(job_id, True, f"job {job_id} started for {source.uri}")
