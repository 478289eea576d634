"""JobState -> JobState with `remote`, `poll` and `status`: the inference job is submitted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.models import JobState
from osbatch.steps.remote import start_job


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = JobState.model_validate(event)
    env = runtime()
    config = env.pipeline(state.pipeline)
    result = start_job(
        state,
        config=config,
        backend=env.backend(config),
        jobs=env.jobs,
        output_bucket=env.settings.output_bucket,
        now=env.now,
    )
    metrics.add_dimension(name="pipeline", value=state.pipeline)
    metrics.add_metric(name="InferenceJobsSubmitted", unit=MetricUnit.Count, value=1)
    logger.info(
        "inference job submitted", extra={"job_id": state.job_id, "remote": result.dump().get("remote")}
    )
    return result.dump()
