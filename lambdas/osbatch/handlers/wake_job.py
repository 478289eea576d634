"""EventBridge state-change event of a remote job -> SendTaskSuccess to the job's parked WaitForJob."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import logger, tracer
from osbatch.handlers.wiring import runtime
from osbatch.steps.wake_job import RemoteJobEvent, wake


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = RemoteJobEvent.model_validate(event)
    env = runtime()
    outcome, job_id = wake(
        parsed.source,
        parsed.detail_type,
        parsed.detail,
        wakeups=env.wakeups,
        sfn=env.client("stepfunctions"),
    )
    logger.info("remote job event", extra={"outcome": outcome.value, "job_id": job_id, "id": parsed.id})
    return {"outcome": outcome.value, "job_id": job_id}
