"""JobState -> JobState with `prepared`: validated records written as the backend's input."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.ingest.dead_letter import DeadLetterWriter, dead_letter_key
from osbatch.models import JobState
from osbatch.steps.prepare import prepare_job


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = JobState.model_validate(event)
    env = runtime()
    s3 = env.client("s3")
    config = env.pipeline(state.pipeline)
    dead_letters = DeadLetterWriter(
        s3,
        env.settings.dead_letter_bucket,
        dead_letter_key(state.job_id, "parse", 0),
        job_id=state.job_id,
        source=state.source.uri,
    )
    result = prepare_job(
        state,
        config=config,
        s3=s3,
        backend=env.backend(config),
        jobs=env.jobs,
        output_bucket=env.settings.output_bucket,
        dead_letters=dead_letters,
    )
    assert result.prepared is not None
    metrics.add_dimension(name="pipeline", value=state.pipeline)
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=result.prepared.records_in)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=result.prepared.dead_lettered)
    logger.info("prepared", extra={"job_id": state.job_id, **result.prepared.model_dump()})
    return result.dump()
