"""IngestChunk -> ChunkResult: one byte range of model output, streamed into the index."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.models.ingest import IngestChunk
from osbatch.steps.ingest_chunk import ingest_planned_chunk


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    chunk = IngestChunk.model_validate(event)
    env = runtime()
    config = env.pipeline(chunk.pipeline)
    result = ingest_planned_chunk(
        chunk,
        config=config,
        domain=env.sink_domain(config),
        store=env.store,
        time_left_seconds=max(0.0, context.get_remaining_time_in_millis() / 1000),
    )
    metrics.add_dimension(name="pipeline", value=chunk.pipeline)
    metrics.add_metric(name="RecordsIndexed", unit=MetricUnit.Count, value=result.indexed)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=result.dead_lettered)
    logger.info("chunk ingested", extra={"job_id": chunk.job_id, **result.model_dump()})
    return result.model_dump()
