"""SageMaker access: the role SageMaker assumes, and what start-job and poll-job may do with it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import allow
from osbatch.infra_facts import (
    JOBS_PREFIX,
    REMOTE_JOB_PREFIX,
    S3_URL,
    PipelineConfig,
    job_input_prefix,
    job_output_prefix,
)

SAGEMAKER = "sagemaker.amazonaws.com"
NO_RESOURCE_LEVEL = (
    "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level permissions; "
    "metrics are held to SageMaker's namespaces by condition."
)


def grant_job_data(role: iam.IRole, output_bucket: s3.IBucket, writes: Sequence[str]) -> None:
    """What a batch service's role needs of the output bucket: list under jobs/, read any job's prepared
    input, write any job's output (`writes`: the service's upload actions)."""
    allow(
        role,
        ["s3:ListBucket"],
        [output_bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [f"{JOBS_PREFIX}*"]}},
    )
    allow(
        role,
        ["s3:GetObject"],
        [output_bucket.arn_for_objects(f"{job_input_prefix('*')}*")],
        reason="Reads the prepared input of any job; job ids are generated at run time.",
    )
    allow(
        role,
        list(writes),
        [output_bucket.arn_for_objects(f"{job_output_prefix('*')}*")],
        reason="Writes the output of any job; job ids are generated at run time.",
    )


class InferenceAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        output_bucket: s3.IBucket,
        pipelines: Sequence[PipelineConfig],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "SageMakerRole",
            description="SageMaker runs osbatch's transform jobs with it (use it as the model's role)",
            # Confused-deputy guard: only SageMaker acting for this account may assume it.
            assumed_by=iam.ServicePrincipal(
                SAGEMAKER, conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        grant_job_data(self.role, output_bucket, ["s3:PutObject", "s3:AbortMultipartUpload"])
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/TransformJobs",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        allow(
            self.role,
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [log_group, f"{log_group}:log-stream:*"],
            reason="SageMaker writes one log stream per transform instance in /aws/sagemaker/TransformJobs.",
        )
        allow(
            self.role,
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            reason=NO_RESOURCE_LEVEL,
        )
        allow(self.role, ["ecr:GetAuthorizationToken"], ["*"], reason=NO_RESOURCE_LEVEL)
        self._grant_models(stack, pipelines)

    def _grant_models(self, stack: Stack, pipelines: Sequence[PipelineConfig]) -> None:
        """Each pipeline's model artifacts (and their key) and images, as inference.sagemaker_model names."""
        models = [p.inference.sagemaker_model for p in pipelines]
        accounts = list(dict.fromkeys([stack.account, *(a for m in models for a in m.image_accounts)]))
        allow(
            self.role,
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [
                stack.format_arn(service="ecr", account=a, resource="repository", resource_name="*")
                for a in accounts
            ],
            reason="The model's image is named at CreateModel, outside this stack; pulls are held to this "
            "account and the accounts inference.sagemaker_model.image_accounts names, in this region.",
        )
        urls = list(dict.fromkeys(m.model_data_url for m in models if m.model_data_url))
        if urls:
            allow(
                self.role,
                ["s3:GetObject"],
                [_object_arn(url) for url in urls],
                reason="A model_data_url that ends in '/' names every artifact under that prefix.",
            )
        keys = list(dict.fromkeys(m.kms_key_arn for m in models if m.kms_key_arn))
        if keys:
            allow(
                self.role,
                ["kms:Decrypt"],
                keys,
                # Only to read the artifacts from S3, not to decrypt anything else with the key.
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )

    def grant_transform_jobs(self, grantee: iam.IGrantable, *actions: str) -> None:
        """SageMaker actions on osbatch's transform jobs only."""
        jobs = Stack.of(self).format_arn(
            service="sagemaker", resource="transform-job", resource_name=f"{REMOTE_JOB_PREFIX}*"
        )
        allow(
            grantee,
            [f"sagemaker:{action}" for action in actions],
            [jobs],
            reason="Transform job names are generated per job; the grant is held to the "
            f"'{REMOTE_JOB_PREFIX}' prefix.",
        )


def _object_arn(url: str) -> str:
    """s3://bucket/key -> the object's ARN; s3://bucket/prefix/ -> every object under the prefix."""
    match = S3_URL.match(url)
    assert match is not None, "the config validated the URL"
    key = match["key"]
    return f"arn:{Aws.PARTITION}:s3:::{match['bucket']}/{key}{'*' if key.endswith('/') else ''}"
