"""What every JobState -> JobState handler shares: Powertools decorators, one parse, one typed return."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import logger, metrics, tracer
from osbatch.handlers.wiring import Runtime, runtime
from osbatch.models import JobState

Step = Callable[[JobState, Runtime], JobState]
Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def job_step(step: Step) -> Handler:
    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        state = JobState.model_validate(event)
        logger.append_keys(job_id=state.job_id)
        metrics.add_dimension(name="pipeline", value=state.pipeline)
        return step(state, runtime()).dump()

    return handler
