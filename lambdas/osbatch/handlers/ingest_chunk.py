"""IngestChunk -> ChunkResult: one byte range of model output, streamed into the index."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.contracts import INGEST_DEAD_LETTERS, dead_letter_key
from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.wiring import runtime
from osbatch.ingest.batch_job import batch_target, is_batch_chunk, load_staged
from osbatch.ingest.chunk import IngestTarget, ingest_chunk
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
    target, cited = IngestTarget.of_pipeline(config), chunk.source.uri
    if is_batch_chunk(chunk.source.bucket, chunk.source.key, chunk.job_id, env.settings.output_bucket):
        staged = load_staged(s3, env.settings.output_bucket, chunk.job_id)
        target, cited = batch_target(staged, chunk.file, config), staged.files[chunk.file].cited

    def dead_letters(segment: int) -> DeadLetterWriter:
        key = dead_letter_key(chunk.job_id, INGEST_DEAD_LETTERS, chunk.chunk, segment)
        return DeadLetterWriter(s3, env.settings.dead_letter_bucket, key, job_id=chunk.job_id, source=cited)

    domain = env.domain_writers(config)
    writer = f"{chunk.job_id}/{chunk.chunk}"
    # Waiting for a slot uses the invocation's time, leaving most of it for the chunk itself.
    domain.acquire(writer, wait_seconds=max(0.0, context.get_remaining_time_in_millis() / 1000 / 3))
    throttled = True  # a chunk that failed outright tells the limit to back off
    try:
        result = ingest_chunk(
            chunk,
            target=target,
            s3=s3,
            opensearch=env.opensearch(config),
            dead_letters=dead_letters,
            progress=TableProgress(env.jobs, chunk.job_id, chunk.chunk),
            checkpoint_bytes=config.sink.bulk.checkpoint_bytes,
        )
        throttled = result.throttled > 0
    finally:
        domain.release(writer, throttled=throttled)
    env.jobs.put_chunk(
        chunk.job_id, chunk.chunk, ChunkCounts(result.lines, result.indexed, result.dead_lettered)
    )
    metrics.add_dimension(name="pipeline", value=chunk.pipeline)
    metrics.add_metric(name="RecordsIndexed", unit=MetricUnit.Count, value=result.indexed)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=result.dead_lettered)
    logger.info("chunk ingested", extra={"job_id": chunk.job_id, **result.model_dump()})
    return result.model_dump()
