"""WaitForJob's and WaitForSlot's task: store the task token on the job item, resume at once if the job
already finished (or a slot was released for it)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import logger, tracer
from osbatch.handlers.wiring import runtime
from osbatch.steps.park_job import PARK_FOR_SLOT, ParkRequest, park


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ParkRequest.model_validate(event)
    logger.append_keys(job_id=request.job_id)
    env = runtime()
    wakeups = env.slot_wakeups if request.wait == PARK_FOR_SLOT else env.wakeups
    outcome = park(request, wakeups=wakeups, sfn=env.client("stepfunctions"))
    logger.info("parked", extra={"outcome": outcome.value, "wait": request.wait})
    return {"outcome": outcome.value}
