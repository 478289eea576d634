"""Completion noticed at once: EventBridge rules on the services' job state-change events -> wake-job.

One rule per service (osbatch.backends.remote_events names the source, detail-type and fields, with the
AWS pages that document them), matching only terminal states of jobs named with osbatch's remote job
prefix, on the default bus where AWS services put their events. wake-job sends the parked WaitForJob's task
token; park-job sends it itself when the event came first. Both may call SendTaskSuccess on this state machine
only. A lost event costs nothing but time: WaitForJob's timeout still polls.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.nag import allow
from osbatch.infra_facts import REMOTE_JOB_PREFIX, STATE_CHANGE_EVENTS, StateChangeEvent

# An event that outlives a poll interval is no longer worth delivering (the poll has run by then);
# EventBridge retries a failed Lambda delivery within these bounds.
MAX_EVENT_AGE = Duration.hours(1)
RETRY_ATTEMPTS = 8


def state_change_pattern(event: StateChangeEvent) -> events.EventPattern:
    return events.EventPattern(
        source=[event.source],
        detail_type=[event.detail_type],
        detail={
            event.name_field: events.Match.prefix(REMOTE_JOB_PREFIX),
            event.status_field: event.terminal_statuses,
        },
    )


class WakeRules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        wake: lambda_.IFunction,
        token_senders: Sequence[iam.IRole],
        state_machine_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules = [
            events.Rule(
                self,
                event.source.removeprefix("aws.").capitalize(),
                description=f"osbatch: {event.detail_type} of osbatch's jobs, terminal states",
                event_pattern=state_change_pattern(event),
                targets=[
                    targets.LambdaFunction(wake, max_event_age=MAX_EVENT_AGE, retry_attempts=RETRY_ATTEMPTS)
                ],
            )
            for event in STATE_CHANGE_EVENTS
        ]
        for role in token_senders:
            allow(role, ["states:SendTaskSuccess"], [state_machine_arn])
