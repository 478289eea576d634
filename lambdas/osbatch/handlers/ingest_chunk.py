"""IngestChunk -> ChunkResult: one byte range of model output, streamed into the index."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.contracts import dead_letter_key
from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.ingest.chunk import ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.models import IngestChunk
from osbatch.jobs import ChunkCounts, TableProgress


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    chunk = IngestChunk.model_validate(event)
    env = runtime()
    s3 = env.client("s3")
    config = env.pipeline(chunk.pipeline)

    def dead_letters(segment: int) -> DeadLetterWriter:
        key = dead_letter_key(chunk.job_id, "ingest", chunk.chunk, segment)
        return DeadLetterWriter(
            s3, env.settings.dead_letter_bucket, key, job_id=chunk.job_id, source=chunk.source.uri
        )

    result = ingest_chunk(
        chunk,
        config=config,
        s3=s3,
        opensearch=env.opensearch(config),
        dead_letters=dead_letters,
        progress=TableProgress(env.jobs, chunk.job_id, chunk.chunk),
    )
    env.jobs.put_chunk(
        chunk.job_id, chunk.chunk, ChunkCounts(result.lines, result.indexed, result.dead_lettered)
    )
    metrics.add_dimension(name="pipeline", value=chunk.pipeline)
    metrics.add_metric(name="RecordsIndexed", unit=MetricUnit.Count, value=result.indexed)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=result.dead_lettered)
    logger.info("chunk ingested", extra={"job_id": chunk.job_id, **result.model_dump()})
    return result.model_dump()
