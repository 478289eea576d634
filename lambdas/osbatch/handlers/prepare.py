"""JobState -> JobState with `prepared`: index checked, valid records written as the backend's input."""

from __future__ import annotations

from osbatch.contracts import PREPARE_DEAD_LETTERS, dead_letter_key
from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.models import JobState
from osbatch.steps.prepare import prepare_job


def prepare(state: JobState, env: Runtime) -> JobState:
    s3 = env.client("s3")
    config = env.pipeline(state.pipeline)
    dead_letters = DeadLetterWriter(
        s3,
        env.settings.dead_letter_bucket,
        dead_letter_key(state.job_id, PREPARE_DEAD_LETTERS, 0),
        job_id=state.job_id,
        source=state.source.uri,
    )
    result = prepare_job(state, pipeline=env.deployed(config), store=env.store, dead_letters=dead_letters)
    assert result.prepared is not None
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=result.prepared.records_in)
    metrics.add_metric(name="DeadLetteredRecords", unit=MetricUnit.Count, value=result.prepared.dead_lettered)
    logger.info("prepared", extra=result.prepared.model_dump())
    return result


handler = job_step(prepare)
