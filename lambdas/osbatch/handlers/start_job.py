"""JobState -> JobState with `remotes`, `poll` and `status`: the inference jobs are submitted."""

from __future__ import annotations

from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.models import JobState
from osbatch.steps.start_job import start_job


def start(state: JobState, env: Runtime) -> JobState:
    config = env.pipeline(state.pipeline)
    result = start_job(
        state,
        config=config,
        backend=env.backend(config),
        store=env.store,
        now=env.now,
    )
    metrics.add_metric(name="InferenceJobsSubmitted", unit=MetricUnit.Count, value=len(result.remotes))
    logger.info("inference jobs submitted", extra={"remotes": result.dump().get("remotes")})
    return result


handler = job_step(start)
