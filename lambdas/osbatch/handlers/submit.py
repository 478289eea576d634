"""SQS batch of S3 `Object Created` events -> one job workflow execution per new object."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import Runtime, runtime
from osbatch.steps.submit import ObjectCreatedRecord, Workflow, source_from_event, submit_object

# Each record is parsed into ObjectCreatedRecord before record_handler sees it; a record that does not
# validate is a batch item failure, logged (via `logger`) with the validation error naming the field.
# Powertools' Logger has the logging.Logger methods the processor calls (warning with exc_info).
processor = BatchProcessor(
    event_type=EventType.SQS, model=ObjectCreatedRecord, logger=cast(logging.Logger, logger)
)


@tracer.capture_method
def record_handler(record: ObjectCreatedRecord, env: Runtime) -> None:
    outcome = submit_object(
        source_from_event(record.body),
        pipelines=env.pipelines,
        jobs=env.jobs,
        s3=env.client("s3"),
        workflow=Workflow(env.client("stepfunctions"), env.settings.state_machine_arn),
    )
    logger.info(outcome.detail, extra={"job_id": outcome.job_id, "message_id": record.messageId})
    if outcome.started:
        metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Settings and pipelines are read before any record: a deployment problem fails the invocation
    # with its own message instead of being reported once per record as if each message were bad.
    env = runtime()
    return process_partial_response(
        event=event, record_handler=partial(record_handler, env=env), processor=processor, context=context
    )
