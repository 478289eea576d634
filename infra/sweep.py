"""The safety net under FailJob: executions of the job workflow that end FAILED, TIMED_OUT or ABORTED
-> fail-job's function, which fails their jobs unless they already ended (steps/execution_ended.py).

Step Functions sends an "Execution Status Change" event to the default bus for every status change of a
Standard workflow's execution ("Automating Step Functions event delivery with EventBridge",
https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html); the rule matches this
state machine's ending ones. The target is fail-job's function (a second entry point of its handler), so the
net holds FailJob's grants and no more, plus reading this machine's execution histories.
Events EventBridge cannot deliver go to a queue of their own, kept 14 days: the jobs in it are un-ended.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.nag import acknowledge, allow
from infra.queues import retained_dead_letter_queue
from osbatch.infra_facts import EXECUTION_ENDED_STATUSES, EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE

# An un-ended job is worth failing however late; EventBridge's maximum is 24 h and 185 attempts.
MAX_EVENT_AGE = Duration.hours(24)
RETRY_ATTEMPTS = 185


def execution_ended_pattern(state_machine_arn: str) -> events.EventPattern:
    return events.EventPattern(
        source=[EXECUTION_STATUS_SOURCE],
        detail_type=[EXECUTION_STATUS_CHANGE],
        detail={"status": list(EXECUTION_ENDED_STATUSES), "stateMachineArn": [state_machine_arn]},
    )


def executions_arn(scope: Construct, machine_name: str) -> str:
    """arn:...:execution:<machine name>:*, every execution of the machine and of no other."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{machine_name}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class ExecutionSweep(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        fail_job: lambda_.IFunction,
        state_machine_arn: str,
        machine_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        # The events in it are jobs that could not be ended (`osbatch end-unended` ends them again).
        self.dead_letter_queue = retained_dead_letter_queue(self, "Dlq")
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the rule target's dead-letter queue (EventBridge DeadLetterConfig), which cdk-nag "
            "does not see as one; a dead-letter queue of its own would only move the question.",
        )
        self.rule = events.Rule(
            self,
            "ExecutionEnded",
            description="osbatch: job workflow executions that ended FAILED, TIMED_OUT or ABORTED",
            event_pattern=execution_ended_pattern(state_machine_arn),
            targets=[
                targets.LambdaFunction(
                    fail_job,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=MAX_EVENT_AGE,
                    retry_attempts=RETRY_ATTEMPTS,
                )
            ],
        )
        assert fail_job.role is not None
        allow(
            fail_job.role,
            ["states:GetExecutionHistory"],
            [executions_arn(self, machine_name)],
            reason="An execution's name is its job id, known only at run time; the ARN names this machine.",
        )
