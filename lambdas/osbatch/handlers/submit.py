"""SQS batch of S3 `Object Created` events -> one job workflow execution per new object."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.steps.submit import source_from_event, submit_object

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    env = runtime()
    outcome = submit_object(
        source_from_event(json.loads(record.body)),
        pipelines=env.pipelines,
        jobs=env.jobs,
        s3=env.client("s3"),
        sfn=env.client("stepfunctions"),
        state_machine_arn=env.settings.state_machine_arn,
    )
    logger.info(outcome.detail, extra={"job_id": outcome.job_id})
    if outcome.started:
        metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
