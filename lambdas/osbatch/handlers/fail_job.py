"""FailJob's function, two entry points in one handler (one function holds FailJob's grants):
- JobState (+ `error`) -> JobState, from the workflow's Catch clauses: the job is recorded as failed, with
  the reason, and alarmed on;
- a Step Functions Execution Status Change event (FAILED, TIMED_OUT, ABORTED), from the safety-net rule
  (infra/sweep.py): the job of an execution that ended without FailJob is failed the same way
  (steps/execution_ended.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from osbatch.handlers.observability import MetricUnit, logger, metrics, tracer
from osbatch.handlers.step import job_step
from osbatch.handlers.wiring import Runtime, runtime
from osbatch.models import JobState
from osbatch.search.bulk_load import IndexLoad
from osbatch.steps.execution_ended import ExecutionStatusEvent, execution_ended, is_execution_status_event
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


step_handler = job_step(fail)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def execution_ended_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = ExecutionStatusEvent.model_validate(event).detail
    logger.append_keys(job_id=detail.name)
    env = runtime()
    sfn = env.client("stepfunctions")

    def history(execution_arn: str) -> list[dict[str, Any]]:
        # Newest first; the first page holds the last state's document.
        try:
            page = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=100)
        except ClientError:
            # Failing the job from the execution's input beats leaving it un-ended.
            logger.exception("no execution history; the job is failed from the execution's input")
            return []
        return list(page["events"])

    def fail_from_event(state: JobState) -> JobState:
        metrics.add_dimension(name="pipeline", value=state.pipeline)
        return fail(state, env)

    outcome, _ = execution_ended(detail, jobs=env.jobs, history=history, fail=fail_from_event)
    logger.info("execution ended", extra={"status": detail.status, "outcome": outcome.value})
    return {"outcome": outcome.value, "job_id": detail.name}


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_execution_status_event(event):
        return execution_ended_handler(event, context)
    return step_handler(event, context)
