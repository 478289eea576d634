"""SageMaker access: the role SageMaker assumes, and what start-job and poll-job may do with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.functions import LOG_RETENTION
from infra.nag import allow
from osbatch.infra_facts import (
    ECR_IMAGE,
    JOBS_PREFIX,
    REMOTE_JOB_PREFIX,
    S3_URL,
    Backend,
    PipelineConfig,
    job_input_prefix,
    job_output_prefix,
)

SAGEMAKER = "sagemaker.amazonaws.com"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
# Context: `existing` when the account already has SageMaker's transform log group (created by an earlier
# transform job), which the stack then leaves alone instead of failing to create it.
SAGEMAKER_LOG_GROUP_CONTEXT = "sagemaker_log_group"
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
        create_log_group: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._jobs = transform_jobs_arn(stack)
        # The models the pipelines name (inference.sagemaker.ModelName): the only ones osbatch's transform
        # jobs may run, and the only ones besides those jobs that may run as this role.
        self.model_arns = list(
            dict.fromkeys(model_arn(stack, name) for name in sagemaker_model_names(pipelines))
        )
        # ML Commons' batch connectors run theirs, with this role too, in the connector's region.
        batch = [
            (p.inference.ml_commons.sagemaker.ModelName, p.inference.ml_commons.region)
            for p in pipelines
            if p.inference.backend is Backend.ML_COMMONS and p.inference.ml_commons is not None
        ]
        batch_jobs = [transform_jobs_arn(stack, region) for region in dict.fromkeys(r for _, r in batch if r)]
        trusted = [self._jobs, *batch_jobs, *self.model_arns]
        trusted += [model_arn(stack, name, region) for name, region in batch]
        self.role = iam.Role(
            self,
            "SageMakerRole",
            description="SageMaker runs osbatch's transform jobs with it (use it as the model's role)",
            # Confused-deputy guard: only SageMaker acting for this account, for osbatch's transform jobs or
            # the configured models, may assume it.
            assumed_by=iam.ServicePrincipal(
                SAGEMAKER,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": list(dict.fromkeys(trusted))},
                },
            ),
        )
        grant_job_data(self.role, output_bucket, ["s3:PutObject", "s3:AbortMultipartUpload"])
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=TRANSFORM_LOG_GROUP,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        if create_log_group:
            # SageMaker's own log group, created here with a retention rather than by SageMaker without one
            # (context sagemaker_log_group=existing when the account already has it).
            logs.LogGroup(
                self,
                "TransformLogs",
                log_group_name=TRANSFORM_LOG_GROUP,
                retention=LOG_RETENTION,
                removal_policy=RemovalPolicy.DESTROY,
            )
        allow(
            self.role,
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
            reason=f"SageMaker writes one log stream per transform instance in {TRANSFORM_LOG_GROUP}.",
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
        pulls = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        images = list(dict.fromkeys(m.image for m in models if m.image))
        if images:
            # The image's own repository, from its URI: nothing else in any account.
            allow(self.role, pulls, list(dict.fromkeys(_repository_arn(stack, image) for image in images)))
        if len(images) < len(models):
            accounts = list(dict.fromkeys([stack.account, *(a for m in models for a in m.image_accounts)]))
            allow(
                self.role,
                pulls,
                [
                    stack.format_arn(service="ecr", account=a, resource="repository", resource_name="*")
                    for a in accounts
                ],
                reason="A model whose inference.sagemaker_model.image is not given has its image named at "
                "CreateModel, outside this stack; pulls are held to this account and the accounts "
                "image_accounts names, in this region.",
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
        """SageMaker actions on osbatch's transform jobs only; CreateTransformJob only with the configured
        models (and not at all without one)."""
        reason = f"Transform job names are generated per job; held to the '{REMOTE_JOB_PREFIX}' prefix."
        others = [f"sagemaker:{action}" for action in actions if action != "CreateTransformJob"]
        if others:
            allow(grantee, others, [self._jobs], reason=reason)
        if "CreateTransformJob" in actions and self.model_arns:
            allow(
                grantee,
                ["sagemaker:CreateTransformJob"],
                [self._jobs],
                reason=reason,
                conditions=model_condition(self.model_arns),
            )


def sagemaker_model_names(pipelines: Sequence[PipelineConfig]) -> list[str]:
    return [
        p.inference.sagemaker.ModelName
        for p in pipelines
        if p.inference.backend is Backend.SAGEMAKER and p.inference.sagemaker is not None
    ]


def transform_jobs_arn(stack: Stack, region: str | None = None) -> str:
    """osbatch's transform jobs (named `osb-...`) in `region` (default: the stack's)."""
    return stack.format_arn(
        service="sagemaker", region=region, resource="transform-job", resource_name=f"{REMOTE_JOB_PREFIX}*"
    )


def model_arn(stack: Stack, name: str, region: str | None = None) -> str:
    return stack.format_arn(service="sagemaker", region=region, resource="model", resource_name=name.lower())


def model_condition(model_arns: Sequence[str]) -> dict[str, Any]:
    """CreateTransformJob's sagemaker:ModelArn held to these models (SageMaker ARNs hold names in lower
    case, as model_arn writes them)."""
    return {"ArnLike": {"sagemaker:ModelArn": list(model_arns)}}


def _repository_arn(stack: Stack, image: str) -> str:
    match = ECR_IMAGE.match(image)
    assert match is not None, "the config validated the image URI"
    return stack.format_arn(
        service="ecr",
        account=match["account"],
        region=match["region"],
        resource="repository",
        resource_name=match["repository"],
    )


def _object_arn(url: str) -> str:
    """s3://bucket/key -> the object's ARN; s3://bucket/prefix/ -> every object under the prefix."""
    match = S3_URL.match(url)
    assert match is not None, "the config validated the URL"
    key = match["key"]
    return f"arn:{Aws.PARTITION}:s3:::{match['bucket']}/{key}{'*' if key.endswith('/') else ''}"
