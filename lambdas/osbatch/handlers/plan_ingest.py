"""JobState -> JobState with `plan`: the index exists and the model output is cut into chunks."""

from __future__ import annotations

from osbatch.handlers.observability import MetricUnit, logger, metrics
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime
from osbatch.models import JobState
from osbatch.steps.plan_ingest import plan_ingest


def plan(state: JobState, env: Runtime) -> JobState:
    result = plan_ingest(state, pipeline=env.deployed(env.pipeline(state.pipeline)), store=env.store)
    assert result.plan is not None
    metrics.add_metric(name="IngestChunksPlanned", unit=MetricUnit.Count, value=result.plan.chunks)
    logger.info("ingest planned", extra={"plan": result.dump().get("plan")})
    return result


handler = job_step(plan)
