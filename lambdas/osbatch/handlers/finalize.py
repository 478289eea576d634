"""JobState -> JobState (terminal): counts reconciled, report written, event and metrics sent."""

from __future__ import annotations

from dataclasses import asdict

from osbatch.contracts import job_stale_ids_key
from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.incremental.sync import SyncResult, read_stale, settle
from osbatch.models import JobState
from osbatch.search.bulk_load import IndexLoad
from osbatch.steps.finalize import finalize_job
from osbatch.steps.support.passages import keeps_source


def finalize(state: JobState, env: Runtime) -> JobState:
    config = env.pipeline(state.pipeline)
    opensearch, source = env.opensearch(config), config.source

    store = env.store

    def sync(completed: bool) -> SyncResult:
        stale = int(state.prepared.incremental.get("stale", 0)) if state.prepared else 0
        return settle(
            opensearch,
            config.sink.index,
            source_uri=state.source.uri,
            stale=stale,
            ids=lambda: read_stale(store.s3, store.output_bucket, job_stale_ids_key(state.job_id)),
            mirror=source.sync == "mirror",
            completed=completed,
        )

    result, report = finalize_job(
        state,
        store=env.store,
        publish=env.events.publish,
        index_load=IndexLoad(opensearch, config.sink.index),
        diff_output=not keeps_source(config, env.backend(config)),
        backend=env.backend(config),
        sync=sync if source.incremental and state.batch is None else None,
        release_slot=env.release_slot(config),
    )
    metrics.add_metric(name="JobsCompleted", unit=MetricUnit.Count, value=1)
    # A 0 for every job that did not fail (fail-job adds the 1s), so the failed-jobs graph reads 0 after
    # successes instead of having no data, and a missing series means a misnamed metric.
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=0)
    if report.unaccounted:
        metrics.add_metric(name="UnaccountedRecords", unit=MetricUnit.Count, value=report.unaccounted)
    logger.info("job finished", extra=asdict(report))
    return result


handler = job_step(finalize)
