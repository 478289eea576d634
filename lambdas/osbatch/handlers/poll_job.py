"""JobState -> JobState with a fresh `status` and the next `poll.wait_seconds`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.models import JobState
from osbatch.steps.remote import poll_job


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = JobState.model_validate(event)
    env = runtime()
    config = env.pipeline(state.pipeline)
    result = poll_job(state, config=config, backend=env.backend(config), jobs=env.jobs, now=env.now)
    metrics.add_dimension(name="pipeline", value=state.pipeline)
    metrics.add_metric(name="JobPolls", unit=MetricUnit.Count, value=1)
    if result.poll is not None and result.poll.failures:
        metrics.add_metric(name="FailedStatusCalls", unit=MetricUnit.Count, value=1)
    logger.info("polled", extra={"job_id": state.job_id, "status": result.dump().get("status")})
    return result.dump()
