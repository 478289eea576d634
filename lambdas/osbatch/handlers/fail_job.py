"""JobState (+ `error`) -> JobState: the job is recorded as failed, with the reason, and alarmed on."""

from __future__ import annotations

from dataclasses import asdict

from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.models import JobState
from osbatch.search.bulk_load import IndexLoad
from osbatch.steps.fail_job import fail_job


def fail(state: JobState, env: Runtime) -> JobState:
    config = env.pipelines.get(state.pipeline)
    result, report = fail_job(
        state,
        backend=env.backend(config) if config else None,
        store=env.store,
        publish=env.events.publish,
        index_load=IndexLoad(env.opensearch(config), config.sink.index) if config else None,
        chunked=config is not None and config.source.chunking is not None,
        release_slot=env.release_slot(config) if config else None,
    )
    # JobsFailed is what the failed-job alarm watches.
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
    logger.error("job failed", extra=asdict(report))
    return result


handler = job_step(fail)
