"""The stack's dead-letter queues: where events that could not be delivered or handled wait for a person.

Each holds events whose work was not done (uploads that never became jobs, jobs the safety net could not
end), so each keeps them as long as SQS allows (14 days, "Amazon SQS quotas", docs.aws.amazon.com/
AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html), is kept by `cdk destroy`, and is
encrypted with an SQS-managed key, which EventBridge can send to without a KMS grant ("Using dead-letter
queues to process undelivered events in EventBridge", docs.aws.amazon.com/eventbridge/latest/userguide/
eb-rule-dlq.html).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

RETENTION = Duration.days(14)  # SQS's maximum: time to find out why, fix it and redrive


def retained_dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=RETENTION,
        removal_policy=RemovalPolicy.RETAIN,
    )
