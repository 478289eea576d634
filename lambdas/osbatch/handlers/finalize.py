"""JobState -> JobState (terminal): counts reconciled, report written, event and metrics sent."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.models import JobState
from osbatch.steps.finish import finalize_job


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = JobState.model_validate(event)
    env = runtime()
    result, report = finalize_job(
        state,
        jobs=env.jobs,
        s3=env.client("s3"),
        output_bucket=env.settings.output_bucket,
        dead_letter_bucket=env.settings.dead_letter_bucket,
        publish=env.events.publish,
    )
    metrics.add_dimension(name="pipeline", value=state.pipeline)
    metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
    if report.unaccounted:
        metrics.add_metric(name="UnaccountedRecords", unit=MetricUnit.Count, value=report.unaccounted)
    logger.info("job finished", extra=asdict(report))
    return result.dump()
