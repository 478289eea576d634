"""Buckets and the job table: where input, working data, dead letters and job state live."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Key layout from docs/architecture.md: the lifecycle rules and IAM grants use the prefixes the code writes.
from osbatch.infra_facts import DEAD_LETTER_PREFIX, JOBS_BY_PIPELINE_INDEX, JOBS_PREFIX


@dataclass(frozen=True)
class Retention:
    """How long data osbatch can recreate (or has already reported) is kept."""

    work_data_days: int = 14  # prepared input and model output; the index holds the result
    dead_letter_days: int = 30  # long enough to fix a mapping and `osbatch replay`
    access_log_days: int = 90
    noncurrent_input_days: int = 30  # overwritten uploads stay recoverable for a month


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retention: Retention | None = None) -> None:
        super().__init__(scope, construct_id)
        keep = retention or Retention()

        self.access_logs = self._bucket(
            "AccessLogs",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(keep.access_log_days))],
            server_access_logs=False,
        )
        # No AwsSolutions-S1 acknowledgement: cdk-nag sees that this bucket is the access-log destination.

        self.input_bucket = self._bucket(
            "Input",
            # Users' source data: versioning makes an accidental overwrite or delete recoverable.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(keep.noncurrent_input_days)),
            ],
        )
        # The native EventBridgeConfiguration property, rather than `event_bridge_enabled=True`: in CDK 2.275
        # the latter deploys a custom-resource Lambda (managed policy, wildcard s3:PutBucketNotification)
        # to set what CloudFormation can set directly.
        cfn_input = self.input_bucket.node.default_child
        assert isinstance(cfn_input, s3.CfnBucket)
        cfn_input.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )

        self.output_bucket = self._bucket(
            "Output",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-job-work-data",
                    prefix=JOBS_PREFIX,
                    expiration=Duration.days(keep.work_data_days),
                ),
            ],
        )
        self.dead_letter_bucket = self._bucket(
            "DeadLetter",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-dead-letters",
                    prefix=DEAD_LETTER_PREFIX,
                    expiration=Duration.days(keep.dead_letter_days),
                ),
            ],
        )

        self.job_table = dynamodb.Table(
            self,
            "JobTable",
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="item", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
            # Job history and counts cannot be recreated: no delete, not even by hand, until this is lifted.
            deletion_protection=True,
        )
        # Sparse: only `item = "job"` rows carry `pipeline`, so chunk rows never enter the index.
        self.job_table.add_global_secondary_index(
            index_name=JOBS_BY_PIPELINE_INDEX,
            partition_key=dynamodb.Attribute(name="pipeline", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    def _bucket(
        self,
        construct_id: str,
        *,
        lifecycle_rules: list[s3.LifecycleRule],
        versioned: bool = False,
        server_access_logs: bool = True,
    ) -> s3.Bucket:
        # Every upload path is a multipart candidate; abandoned parts are billed until aborted.
        abort = s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
        )
        return s3.Bucket(
            self,
            construct_id,
            # SSE-S3 rather than KMS: SageMaker and the access-log service write here without key grants.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            lifecycle_rules=[*lifecycle_rules, abort],
            server_access_logs_bucket=self.access_logs if server_access_logs else None,
            server_access_logs_prefix=f"{construct_id.lower()}/" if server_access_logs else None,
            removal_policy=RemovalPolicy.RETAIN,
        )
