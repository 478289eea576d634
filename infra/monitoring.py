"""Alarms to an encrypted SNS topic, and one dashboard that shows a job from event to index."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.functions import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)
# The handlers' Powertools metric names (namespace `osbatch`).
JOBS_STARTED, JOBS_COMPLETED, JOBS_FAILED = "JobsStarted", "JobsCompleted", "JobsFailed"
RECORDS_INDEXED, DEAD_LETTERED = "RecordsIndexed", "DeadLetteredRecords"


def custom_metric(name: str, label: str | None = None) -> cloudwatch.MathExpression:
    """Sum of an osbatch metric over all its dimension sets (Metrics Insights), whatever dimensions it has."""
    return cloudwatch.MathExpression(
        expression=f"SELECT SUM({name}) FROM {METRICS_NAMESPACE}", period=PERIOD, label=label or name
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        functions: Mapping[str, lambda_.IFunction],
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        state_machine: sfn.StateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._topic()
        errors = cloudwatch.MathExpression(
            expression="SUM(METRICS())",
            using_metrics={
                f"e{i}": fn.metric_errors(period=PERIOD, statistic="Sum")
                for i, fn in enumerate(functions.values())
            },
            period=PERIOD,
            label="Lambda errors (all functions)",
        )
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic="Maximum"
        )
        alarms: dict[str, tuple[cloudwatch.IMetric, str]] = {
            "SubmitDlqNotEmpty": (dlq_depth, "S3 events that could not start a job are in the submit DLQ"),
            "LambdaErrors": (errors, "An osbatch function raised an error"),
            "ExecutionsFailed": (
                state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                "A job workflow execution failed",
            ),
            "JobsFailed": (
                custom_metric(JOBS_FAILED),
                "A job ended FAILED, CANCELLED, EXPIRED or UNREACHABLE",
            ),
            "DeadLetteredRecords": (
                custom_metric(DEAD_LETTERED),
                "Records were written to the dead-letter bucket",
            ),
        }
        for alarm_id, (metric, description) in alarms.items():
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_description=description,
                metric=metric,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # no traffic is not an incident
            )
            alarm.add_alarm_action(actions.SnsAction(self.topic))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        self.dashboard.add_widgets(
            _graph("Jobs", [custom_metric(n) for n in (JOBS_STARTED, JOBS_COMPLETED, JOBS_FAILED)]),
            _graph("Records", [custom_metric(RECORDS_INDEXED), custom_metric(DEAD_LETTERED)]),
            _graph(
                "Workflow executions",
                [
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    state_machine.metric_failed(period=PERIOD),
                    state_machine.metric_timed_out(period=PERIOD),
                ],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Lambda errors",
                [fn.metric_errors(period=PERIOD, label=name) for name, fn in functions.items()],
            ),
            _graph(
                "Lambda duration (p99)",
                [
                    fn.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in functions.items()
                ],
            ),
            _graph(
                "Submit queue depth",
                [
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, label="submit queue"),
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, label="DLQ"
                    ),
                ],
            ),
        )

    def _topic(self) -> sns.Topic:
        stack = Stack.of(self)
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="osbatch alarm topic")
        # CloudWatch alarms publish as the service, so the key and the topic must both let it in.
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm:*")},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        return topic


def _graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=8, height=6)
