"""JobState -> JobState with `plan`: the index exists and the model output is cut into chunks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.models import JobState
from osbatch.steps.finish import plan_ingest


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = JobState.model_validate(event)
    env = runtime()
    config = env.pipeline(state.pipeline)
    result = plan_ingest(
        state,
        config=config,
        backend=env.backend(config),
        s3=env.client("s3"),
        opensearch=env.opensearch(config),
        jobs=env.jobs,
        output_bucket=env.settings.output_bucket,
    )
    assert result.plan is not None
    metrics.add_dimension(name="pipeline", value=state.pipeline)
    metrics.add_metric(name="IngestChunksPlanned", unit=MetricUnit.Count, value=result.plan.chunks)
    logger.info("ingest planned", extra={"job_id": state.job_id, "plan": result.dump().get("plan")})
    return result.dump()
