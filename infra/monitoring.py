"""Alarms that reach someone, and one dashboard from event to index, built with cdk-monitoring-constructs.

The MonitoringFacade names, describes and wires every alarm (ALARM and OK both notify), and draws each
monitored resource's widgets, so this file only says what to watch and at which threshold. The alarm topic
is the stack's own, KMS-encrypted; e-mail addresses are subscribed to it and existing topics (chat, paging)
get the same notifications (notify.py reads both from CDK context).

One alarm per failed job: a job that fails ends its execution in the JobFailed state, so ExecutionsFailed
fires for it (and for any execution that died before FailJob could report). The JobsFailed metric and the
functions' errors are graphed, not alarmed: a function error either is retried away or fails the execution.

Every widget charts something a successful job emits, so an empty widget means a misnamed metric:
- no IteratorAge: it is for stream event sources (Kinesis, DynamoDB streams, "Types of metrics for Lambda
  functions", docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html), and no function has one;
- fail-job runs only when a job fails, so its own Lambda metrics have no datapoint after a success. Its
  section charts JobsFailed instead, which Finalize publishes as 0 and FailJob as 1, next to fail-job's
  invocations and errors; its throttling alarm stays, and its errors fail the execution (ExecutionsFailed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cdk_monitoring_constructs as mc
from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.functions import METRICS_NAMESPACE
from infra.notify import AlarmTargets

PERIOD = Duration.minutes(5)
# The handlers' Powertools metric names (namespace `osbatch`, dimension `pipeline`).
JOBS_STARTED, JOBS_COMPLETED, JOBS_FAILED = "JobsStarted", "JobsCompleted", "JobsFailed"
RECORDS_IN, RECORDS_INDEXED, DEAD_LETTERED = "RecordsIn", "RecordsIndexed", "DeadLetteredRecords"
UNACCOUNTED, FAILED_STATUS_CALLS = "UnaccountedRecords", "FailedStatusCalls"
JOB_TIMEOUT_USED = "JobTimeoutUsedPercent"  # poll-job: how much of polling.timeout_hours a job has used

# Thresholds. A submit message older than this has been failing (5 receives, 3 min visibility) or waiting.
SUBMIT_MESSAGE_MAX_AGE = Duration.minutes(30)
JOB_TIMEOUT_USED_ALARM_PERCENT = 75  # warns before PollJob expires the job at 100
FAILED_STATUS_CALLS_PER_HOUR = 3  # one failed DescribeTransformJob is noise; three an hour is an outage
DOMAIN_DISK_USED_PERCENT = 75  # FreeStorageSpace under a quarter; writes block at 95
DOMAIN_JVM_PRESSURE_PERCENT = 80  # sustained above 80 % leads to circuit breakers and rejected bulks

# Functions a successful job never runs: their section charts the failures they record (see above).
RUN_ONLY_ON_FAILURE = ("fail-job",)

# What a throttled invocation leads to, where it is not a workflow task's retry.
THROTTLED_THEN = {"submit": "SQS redelivers the events, and after 5 receives parks them in the submit DLQ"}


def custom_metric(name: str, statistic: str = "SUM", period: Duration = PERIOD) -> cloudwatch.MathExpression:
    """An osbatch metric over all its dimension sets (a Metrics Insights query, which alarms support)."""
    return cloudwatch.MathExpression(
        expression=f"SELECT {statistic}({name}) FROM {METRICS_NAMESPACE}", period=period, label=name
    )


def _over(threshold: float, description: str, **options: object) -> mc.CustomThreshold:
    return mc.CustomThreshold(
        threshold=threshold,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarm_description_override=description,
        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,  # no traffic is no incident
        **options,  # type: ignore[arg-type]
    )


def _any(description: str) -> dict[str, mc.ErrorCountThreshold]:
    return {
        "Critical": mc.ErrorCountThreshold(
            max_error_count=0,
            alarm_description_override=description,
            treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
    }


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
        unended_jobs_queue: sqs.IQueue,
        state_machine: sfn.StateMachine,
        targets: AlarmTargets,
        domain: opensearch.Domain | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._topic(targets.emails)
        topics: Sequence[sns.ITopic] = [
            self.topic,
            *(sns.Topic.from_topic_arn(self, f"Target{i}", arn) for i, arn in enumerate(targets.topic_arns)),
        ]
        facade = mc.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=mc.AlarmFactoryDefaults(
                alarm_name_prefix=dashboard_name,
                actions_enabled=True,
                # Every alarm here fires on the first breaching period: each is an event someone must see.
                evaluation_periods=1,
                datapoints_to_alarm=1,
                # OK actions too, so whoever was told of an alarm is told when it is over.
                action=mc.MultipleAlarmActionStrategy(
                    [mc.SnsAlarmActionStrategy(on_alarm_topic=t, on_ok_topic=t) for t in topics]
                ),
            ),
            metric_factory_defaults=mc.MetricFactoryDefaults(period=PERIOD),
            dashboard_factory=mc.DefaultDashboardFactory(
                self, "Dashboards", dashboard_name_prefix=dashboard_name, create_summary_dashboard=False
            ),
        )
        self._jobs(facade)
        facade.monitor_sqs_queue_with_dlq(
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            human_readable_name="Submit queue",
            add_queue_max_message_age_alarm={
                "Warning": mc.MaxMessageAgeThreshold(
                    max_age_in_seconds=SUBMIT_MESSAGE_MAX_AGE.to_seconds(),
                    alarm_description_override="S3 events have waited in the submit queue for 30 minutes",
                )
            },
            add_dead_letter_queue_max_size_alarm={
                "Critical": mc.MaxMessageCountThreshold(
                    max_message_count=0,
                    alarm_description_override="S3 events that could not start a job are in the submit DLQ",
                )
            },
        )
        self._unended_jobs(facade, unended_jobs_queue)
        facade.monitor_step_function(
            state_machine=state_machine,
            human_readable_name="Job workflow",
            add_failed_execution_count_alarm=_any("A job failed (see its report), or its execution did"),
            add_timed_out_execution_count_alarm=_any(
                "A job's execution timed out; its job row stays RUNNING"
            ),
            add_aborted_execution_count_alarm=_any(
                "A job's execution was stopped; its job row stays RUNNING"
            ),
            add_throttled_execution_count_alarm=_any("Step Functions throttled the job workflow"),
        )
        for name, function in functions.items():
            then = THROTTLED_THEN.get(
                name, "Step Functions retries it for up to 30 minutes, then fails the job"
            )
            facade.monitor_lambda_function(
                lambda_function=function,
                human_readable_name=f"{name} function",
                alarm_friendly_name=name,
                add_throttles_count_alarm=_any(f"Lambda throttled {name}: {then}"),
                is_iterator=False,  # no stream event source: IteratorAge would stay empty
                add_to_detail_dashboard=name not in RUN_ONLY_ON_FAILURE,
            )
            if name in RUN_ONLY_ON_FAILURE:
                self._failures(facade, name, function)
        if domain is not None:
            self._domain(facade, domain)
        dashboard = facade.created_dashboard()
        assert dashboard is not None, "the facade was asked for its main dashboard"
        self.dashboard = dashboard

    def _jobs(self, facade: mc.MonitoringFacade) -> None:
        def alarmed(
            name: str,
            friendly: str,
            threshold: mc.CustomThreshold,
            statistic: str = "SUM",
            **period: Duration,
        ) -> mc.CustomMetricWithAlarm:
            return mc.CustomMetricWithAlarm(
                metric=custom_metric(name, statistic, **period),
                alarm_friendly_name=friendly,
                add_alarm={"Critical": threshold},
            )

        facade.monitor_custom(
            alarm_friendly_name="Jobs",
            human_readable_name="Jobs and records",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Jobs",
                    metrics=[custom_metric(n) for n in (JOBS_STARTED, JOBS_COMPLETED, JOBS_FAILED)],
                ),
                mc.CustomMetricGroup(
                    title="Records",
                    metrics=[
                        custom_metric(RECORDS_IN),
                        custom_metric(RECORDS_INDEXED),
                        alarmed(
                            DEAD_LETTERED,
                            "DeadLettered",
                            _over(0, "Records were written to the dead-letter bucket"),
                        ),
                        alarmed(
                            UNACCOUNTED,
                            "Unaccounted",
                            _over(0, "A job finished with records neither indexed nor dead-lettered"),
                        ),
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Inference jobs",
                    metrics=[
                        alarmed(
                            FAILED_STATUS_CALLS,
                            "FailedStatusCalls",
                            _over(
                                FAILED_STATUS_CALLS_PER_HOUR - 1,
                                "Status calls to the inference backend keep failing (UNREACHABLE after 10)",
                            ),
                            period=Duration.hours(1),
                        ),
                        alarmed(
                            JOB_TIMEOUT_USED,
                            "JobAge",
                            _over(
                                JOB_TIMEOUT_USED_ALARM_PERCENT,
                                "A job has run for 75 % of its inference.polling.timeout_hours",
                            ),
                            statistic="MAX",
                        ),
                    ],
                ),
            ],
        )

    def _unended_jobs(self, facade: mc.MonitoringFacade, queue: sqs.IQueue) -> None:
        """The safety net's dead-letter queue (infra/sweep.py): each message is a job whose execution ended
        and that no FailJob run could end. Only its two gauges, not a whole queue section: nothing is sent
        to it after a success, so its sent, size and rate widgets would stay empty, while SQS samples the
        gauges of an active queue, empty or not ("Available CloudWatch metrics for Amazon SQS",
        docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html)."""
        facade.monitor_custom(
            alarm_friendly_name="UnendedJobs",
            human_readable_name="Jobs the safety net could not end (its dead-letter queue)",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Un-ended jobs",
                    metrics=[
                        mc.CustomMetricWithAlarm(
                            metric=queue.metric_approximate_number_of_messages_visible(
                                statistic="Maximum", period=PERIOD, label="Un-ended jobs"
                            ),
                            alarm_friendly_name="SweepDlq",
                            add_alarm={
                                "Critical": _over(
                                    0,
                                    "Jobs the safety net could not end (no report, records in no count) are "
                                    "in its dead-letter queue: fix the cause, then `osbatch end-unended`",
                                )
                            },
                        )
                    ],
                ),
                mc.CustomMetricGroup(
                    title="Oldest un-ended job's wait",
                    metrics=[
                        queue.metric_approximate_age_of_oldest_message(
                            statistic="Maximum", period=PERIOD, label="Age"
                        )
                    ],
                ),
            ],
        )

    def _failures(self, facade: mc.MonitoringFacade, name: str, function: lambda_.IFunction) -> None:
        """What a function that runs only for failed jobs records: a series that reads 0 after each success
        (JobsFailed, which Finalize also publishes), with the function's own invocations and errors."""
        facade.monitor_custom(
            alarm_friendly_name=f"{name}-failures",
            human_readable_name=f"{name} function",
            metric_groups=[
                mc.CustomMetricGroup(
                    title="Failed jobs",
                    metrics=[
                        custom_metric(JOBS_FAILED),
                        function.metric_invocations(statistic="Sum", period=PERIOD),
                        function.metric_errors(statistic="Sum", period=PERIOD),
                    ],
                )
            ],
        )

    def _domain(self, facade: mc.MonitoringFacade, domain: opensearch.Domain) -> None:
        facade.monitor_open_search_cluster(
            domain=domain,
            human_readable_name="Search domain",
            add_cluster_status_alarm={
                "Critical": mc.OpenSearchClusterStatusCustomization(
                    status=mc.OpenSearchClusterStatus.RED,
                    alarm_description_override="A primary shard is unassigned: the index cannot take writes",
                )
            },
            add_disk_space_usage_alarm={
                "Warning": mc.UsageThreshold(
                    max_usage_percent=DOMAIN_DISK_USED_PERCENT,
                    alarm_description_override="The domain's FreeStorageSpace is below a quarter",
                )
            },
            add_jvm_memory_pressure_alarm={
                "Warning": mc.UsageThreshold(
                    max_usage_percent=DOMAIN_JVM_PRESSURE_PERCENT,
                    alarm_description_override="JVM memory pressure is above 80 %: bulks will be rejected",
                )
            },
            add_cluster_index_writes_blocked_alarm={
                "Critical": mc.OpenSearchClusterIndexWritesBlockedThreshold(
                    max_blocked_writes=0,
                    alarm_description_override="The domain blocks index writes (ClusterIndexWritesBlocked)",
                )
            },
        )

    def _topic(self, emails: Sequence[str]) -> sns.Topic:
        stack = Stack.of(self)
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="osbatch alarm topic")
        # CloudWatch alarms publish as the service, so the key and the topic must both let it in, and only
        # for alarms of this account (confused-deputy guard).
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=this_account,
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
                    **this_account,
                },
            )
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic
