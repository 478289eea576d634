"""JobState -> JobState with `plan`: the index exists and the model output is cut into chunks."""

from __future__ import annotations

from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.ingest.batch_job import plan_batch_ingest
from osbatch.models import JobState
from osbatch.steps.finish import DEFAULT_CHUNK_BYTES, plan_ingest


def plan(state: JobState, env: Runtime) -> JobState:
    config = env.pipeline(state.pipeline)
    if state.batch is not None:  # a `_batch_ingestion` request: its files, not a model's output
        result = plan_batch_ingest(
            state,
            config=config,
            s3=env.client("s3"),
            opensearch=env.opensearch(config),
            jobs=env.jobs,
            output_bucket=env.settings.output_bucket,
            chunk_bytes=DEFAULT_CHUNK_BYTES,
        )
    else:
        result = plan_ingest(
            state,
            config=config,
            backend=env.backend(config),
            s3=env.client("s3"),
            opensearch=env.opensearch(config),
            jobs=env.jobs,
            output_bucket=env.settings.output_bucket,
            dead_letter_bucket=env.settings.dead_letter_bucket,
        )
    assert result.plan is not None
    metrics.add_metric(name="IngestChunksPlanned", unit=MetricUnit.Count, value=result.plan.chunks)
    logger.info("ingest planned", extra={"plan": result.dump().get("plan")})
    return result


handler = job_step(plan)
