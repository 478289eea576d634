"""S3 Object Created -> EventBridge rule per pipeline -> SQS submit queue (+ DLQ) -> submit function."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.queues import retained_dead_letter_queue
from infra.tags import PIPELINE_TAG
from osbatch.infra_facts import PipelineConfig

MAX_RECEIVE_COUNT = 5  # an event that fails five submits is poison, not throttling: park it in the DLQ
BATCH_SIZE = 10
# Concurrent submit batches the queue may drive; below submit's reserved concurrency, so the event source
# is never throttled by it (throttled batches would count as receives towards the DLQ).
MAX_CONCURRENCY = 5


def key_wildcard(prefix: str, suffix: str) -> str:
    """EventBridge wildcard for keys under prefix ending in suffix; '*' and '\\' in either are literal."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("*", "\\*")

    return f"{escape(prefix)}*{escape(suffix)}"


def object_created_pattern(bucket_name: str, pipeline: PipelineConfig) -> events.EventPattern:
    # The suffix filter is what keeps SageMaker's `.out` and `.manifest` objects from starting jobs.
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"wildcard": key_wildcard(pipeline.source.prefix, pipeline.source.suffix)}]},
        },
    )


class Trigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Sequence[PipelineConfig],
        input_bucket: s3.IBucket,
        submit: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        # The events in it are uploads that never became jobs.
        self.dead_letter_queue = retained_dead_letter_queue(self, "SubmitDlq")
        # No AwsSolutions-SQS3 acknowledgement: cdk-nag sees the submit queue's redrive policy name it.
        submit_timeout = submit.timeout or Duration.seconds(30)
        self.queue = sqs.Queue(
            self,
            "SubmitQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # EventBridge can send to it without a KMS key grant
            enforce_ssl=True,
            # AWS guidance: six times the function timeout, so a retried batch is not redelivered mid-flight.
            visibility_timeout=Duration.seconds(6 * submit_timeout.to_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue
            ),
        )

        self.rules: dict[str, events.Rule] = {}
        for pipeline in pipelines:
            rule = events.Rule(
                self,
                f"{pipeline.name}-object-created",
                description=f"osbatch pipeline {pipeline.name}: new input under {pipeline.source.prefix}",
                event_pattern=object_created_pattern(input_bucket.bucket_name, pipeline),
            )
            # Events EventBridge cannot deliver go to the same DLQ: one place to look for unstarted jobs.
            rule.add_target(targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue))
            Tags.of(rule).add(PIPELINE_TAG, pipeline.name)
            self.rules[pipeline.name] = rule

        submit.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=MAX_CONCURRENCY,
            )
        )
