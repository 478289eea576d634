"""JobState -> JobState with a fresh `status` and the next `poll.wait_seconds`."""

from __future__ import annotations

from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.models import JobState
from osbatch.steps.poll_job import poll_job, timeout_used_percent


def poll(state: JobState, env: Runtime) -> JobState:
    config = env.pipeline(state.pipeline)
    result = poll_job(
        state,
        config=config,
        backend=env.backend(config),
        jobs=env.jobs,
        now=env.now,
        release_slot=env.release_slot(config),
    )
    metrics.add_metric(name="JobPolls", unit=MetricUnit.Count, value=1)
    if result.poll is not None:
        used = timeout_used_percent(result.poll, config.inference.polling, env.now())
        metrics.add_metric(name="JobTimeoutUsedPercent", unit=MetricUnit.Percent, value=used)
        if result.poll.failures:
            metrics.add_metric(name="FailedStatusCalls", unit=MetricUnit.Count, value=1)
    logger.info("polled", extra={"status": result.dump().get("status")})
    return result


handler = job_step(poll)
