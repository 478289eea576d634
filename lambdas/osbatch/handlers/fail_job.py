"""JobState (+ `error`) -> JobState: the job is recorded as failed, with the reason, and alarmed on."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.models import JobState
from osbatch.steps.finish import fail_job


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = JobState.model_validate(event)
    env = runtime()
    config = env.pipelines.get(state.pipeline)
    result, report = fail_job(
        state,
        backend=env.backend(config) if config else None,
        jobs=env.jobs,
        s3=env.client("s3"),
        output_bucket=env.settings.output_bucket,
        dead_letter_bucket=env.settings.dead_letter_bucket,
        publish=env.events.publish,
    )
    metrics.add_dimension(name="pipeline", value=state.pipeline)
    # JobsFailed is what the failed-job alarm watches.
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    logger.error("job failed", extra=asdict(report))
    return result.dump()
