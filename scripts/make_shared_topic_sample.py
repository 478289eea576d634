"""Build samples/aws-cdk-guides/: long documents on shared topics, the CDK construct libraries' guides.

Why this text: samples/python-modules/ measures chunking on documents that each open with their topic (bz2,
gzip, JSON), so the vector of a document's opening alone already finds most of them. Here every document is
a guide to defining AWS resources with the CDK (the module docstring of `aws_cdk.<service>`, the README the
package ships), and the same themes recur across them: encryption, dead-letter queues, retries, replication,
permissions, metrics. What tells two guides apart is the detail deep inside, which is what chunking is for.

The questions were written from reading the guides, before any search ran on them, and were not changed
after: each names its guide (`document_id`), quotes the sentence that answers it (`evidence`) and how deep
it lies (`evidence_word`, past the first 350 words; the script refuses one that is not).

The output is committed; rerun only to change the sample. The text depends on the aws-cdk-lib version that
builds it (the README of samples/ names it). License: aws-cdk-lib is Apache-2.0.
"""

from __future__ import annotations

import importlib
import json
from importlib.metadata import version
from pathlib import Path

from make_long_sample import question  # scripts/ is on the path when a script here runs

OUT = Path(__file__).resolve().parent.parent / "samples" / "aws-cdk-guides"
SERVICES = [
    "aws_sqs",
    "aws_sns",
    "aws_sns_subscriptions",
    "aws_events",
    "aws_events_targets",
    "aws_lambda_event_sources",
    "aws_stepfunctions",
    "aws_stepfunctions_tasks",
    "aws_scheduler",
    "aws_kinesis",
    "aws_kinesisfirehose",
    "aws_lambda",
    "aws_apigateway",
    "aws_apigatewayv2",
    "aws_logs",
    "aws_cloudwatch",
    "aws_s3",
    "aws_dynamodb",
    "aws_ecs",
    "aws_iam",
    "aws_kms",
    "aws_secretsmanager",
    "aws_ssm",
    "aws_ec2",
    "aws_rds",
    "aws_cognito",
    "aws_opensearchservice",
    "aws_codepipeline",
    "aws_codebuild",
    "aws_elasticloadbalancingv2",
    "aws_autoscaling",
    "aws_cloudfront",
    "aws_route53",
    "aws_certificatemanager",
    "aws_efs",
    "aws_backup",
    "aws_batch",
    "aws_appsync",
    "aws_synthetics",
    "aws_eks",
    "aws_ecs_patterns",
    "aws_lambda_nodejs",
    "aws_s3_deployment",
    "aws_cloudtrail",
    "aws_glue",
    "aws_servicecatalog",
]
MIN_WORDS = 1_000
# (guide, question, evidence quoted from the guide, exactly but for where its lines wrap)
QUESTIONS = (
    (
        "aws_sns",
        "how do I raise the message throughput of an ordered FIFO topic?",
        "increasing the number of message groups is recommended",
    ),
    (
        "aws_sns",
        "how long can published messages be kept so subscribers can get them again?",
        "Messages can be archived for a minimum of one day to a maximum of 365 days.",
    ),
    (
        "aws_sns",
        "which kinds of endpoints can report whether a notification was delivered?",
        "log the delivery status of notification messages",
    ),
    (
        "aws_lambda_event_sources",
        "send the records my Kafka consumer function fails to process to another topic",
        "you can send failed records to another Kafka topic",
    ),
    (
        "aws_lambda_event_sources",
        "isolate the bad records of a stream batch by splitting it and retrying",
        "this will cause the batch to be split in two and have each new smaller batch retried",
    ),
    (
        "aws_events",
        "capture the events that could not be delivered to any target of my bus",
        "capture events that could not be delivered to any of the targets",
    ),
    (
        "aws_events",
        "keep a copy of the events sent to a bus so they can be replayed later",
        "It is possible to archive all or some events sent to an event bus.",
    ),
    (
        "aws_scheduler",
        "what happens to a scheduled invocation that keeps failing after its retries?",
        "EventBridge Scheduler uses to deliver failed events to",
    ),
    (
        "aws_scheduler",
        "let a schedule fire at any point within a window instead of at an exact time",
        "You can configure flexible time windows by specifying the `timeWindow` property.",
    ),
    (
        "aws_kinesisfirehose",
        "convert incoming JSON records to Parquet before they land in S3",
        "Data format conversion allows automatic conversion of inputs from JSON to either Parquet or ORC.",
    ),
    (
        "aws_logs",
        "stop anyone from deleting a log group until the setting is turned off",
        "deletion protection blocks all deletion operations until it is explicitly disabled",
    ),
    (
        "aws_s3",
        "require a minimum TLS version for every request to a bucket",
        "To require a minimum TLS version for all requests",
    ),
    (
        "aws_lambda",
        "what is the default timeout of a function and how high can it go?",
        "default timeout of 3 seconds, but this can be increased up to 15 minutes",
    ),
    (
        "aws_cloudwatch",
        "alarm when a metric leaves the band of expected behaviour learned by machine learning",
        "applies machine learning algorithms to create a model of expected metric behavior",
    ),
    (
        "aws_kms",
        "grant a user permission to generate and verify message authentication codes",
        "They have a policy for generating and for verifying a MAC.",
    ),
    (
        "aws_secretsmanager",
        "copy a secret into other regions with its own encryption key there",
        "Secrets can be replicated to multiple regions by specifying `replicaRegions`",
    ),
    (
        "aws_synthetics",
        "retry a failed canary run automatically; how many times at most?",
        "Max retries can be set between 0 and 2.",
    ),
    (
        "aws_ecs",
        "restart a container automatically unless it exits with certain codes",
        "To enable a restart policy for the container, set `enableRestartPolicy` to true",
    ),
    (
        "aws_batch",
        "cancel jobs stuck waiting at the head of the queue for capacity",
        "You can react to jobs stuck in RUNNABLE state",
    ),
    (
        "aws_efs",
        "replicate a file system into another region",
        "You can create a replica of your EFS file system in the AWS Region of your preference.",
    ),
    (
        "aws_opensearchservice",
        "store large amounts of read-only data cheaply on a search domain",
        "UltraWarm nodes can be enabled to provide a "
        "cost-effective way to store large amounts of read-only data.",
    ),
    (
        "aws_route53",
        "keep managing domain names that already end with a dot without another one being added",
        "to prevent the Construct from adding a dot at the end of the domain name",
    ),
    (
        "aws_dynamodb",
        "pre-warm a table for an expected burst of reads and writes",
        "This optional configuration allows you to pre-warm your table or index",
    ),
    (
        "aws_stepfunctions",
        "run the same steps for every element of an array in the input",
        "A `Map` state will execute the same steps for multiple entries of an array in the state input.",
    ),
    (
        "aws_cognito",
        "remember the devices my users sign in from and challenge new ones",
        "User pools can be configured to track devices that users have logged in to.",
    ),
    (
        "aws_rds",
        "keep a cluster's automated backups after the database is deleted",
        "automated backups are removed immediately unless an "
        "AWS Backup policy specifies a point-in-time restore rule",
    ),
    (
        "aws_apigateway",
        "create a single api key with its own throttling limits",
        "you can use `RateLimitedApiKey`",
    ),
    (
        "aws_ec2",
        "use my own NAT instances instead of managed NAT gateways",
        "If you would prefer to use your own managed NAT *instances* instead",
    ),
    (
        "aws_appsync",
        "limit how deeply nested a GraphQL query may be",
        "Limiting queries to a specified amount of nested levels",
    ),
    (
        "aws_s3_deployment",
        "copy files too large for the deployment's default memory",
        "The default memory limit for the deployment resource is 1024MiB.",
    ),
    (
        "aws_glue",
        "queue a job run when account limits are insufficient instead of failing it",
        "AWS Glue will automatically queue the job and wait for limits to free up",
    ),
    (
        "aws_codepipeline",
        "define variables with default values for the whole pipeline",
        "You can add one or more variables at the pipeline level.",
    ),
    (
        "aws_cloudfront",
        "store key-value data that edge functions read, loaded from a JSON file",
        "A CloudFront Key Value Store can be created and "
        "optionally have data imported from a JSON file by default.",
    ),
)


def main() -> None:
    records = []
    for service in SERVICES:
        text = (importlib.import_module(f"aws_cdk.{service}").__doc__ or "").strip() + "\n"
        if len(text.split()) >= MIN_WORDS:
            records.append({"_id": service, "text": text, "title": f"aws_cdk.{service}"})
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    (OUT / "modules.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    texts = {record["_id"]: record["text"] for record in records}
    # the guides wrap their lines: a quote is exact up to white space
    questions = [
        json.dumps(question(texts, *entry, any_spacing=True), ensure_ascii=False) for entry in QUESTIONS
    ]
    (OUT / "questions.jsonl").write_text("\n".join(questions) + "\n", encoding="utf-8")
    size = sum(len(line) for line in lines)
    print(f"{len(records)} guides, {size / 1e6:.1f} MB, from aws-cdk-lib {version('aws-cdk-lib')}, in {OUT}")


if __name__ == "__main__":
    main()
