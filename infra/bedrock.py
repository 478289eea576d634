"""Bedrock batch inference access: the job role Bedrock assumes, and what the functions may do with jobs.

Created only when a pipeline uses the bedrock backend. The role reads only prepared job input and writes
only job output (the job's S3 prefixes, contracts.py), and may invoke only the pipelines' models; the
functions may pass this role, and only this role, and only to Bedrock.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.inference import grant_job_data
from infra.nag import allow
from osbatch.infra_facts import Backend, PipelineConfig

BEDROCK = "bedrock.amazonaws.com"
JOB_ARN_REASON = "Bedrock names invocation jobs with a generated id; the grant is held to invocation jobs."


def bedrock_models(pipelines: Sequence[PipelineConfig]) -> list[str]:
    return sorted(
        {
            p.inference.bedrock.model_id
            for p in pipelines
            if p.inference.backend is Backend.BEDROCK and p.inference.bedrock is not None
        }
    )


class BedrockAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        output_bucket: s3.IBucket,
        model_ids: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._jobs = stack.format_arn(service="bedrock", resource="model-invocation-job", resource_name="*")
        self._models = [
            stack.format_arn(service="bedrock", account="", resource="foundation-model", resource_name=model)
            for model in model_ids
        ]
        self.role = iam.Role(
            self,
            "JobRole",
            description="Bedrock runs osbatch's batch inference jobs with it",
            # Confused-deputy guard: only Bedrock acting for this account's invocation jobs may assume it.
            assumed_by=iam.ServicePrincipal(
                BEDROCK,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self._jobs},
                },
            ),
        )
        grant_job_data(self.role, output_bucket, ["s3:PutObject"])
        if self._models:
            allow(self.role, ["bedrock:InvokeModel"], self._models)

    def grant_jobs(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Bedrock actions on invocation jobs (and, for CreateModelInvocationJob, the pipelines' models)."""
        resources = [self._jobs, *self._models] if "CreateModelInvocationJob" in actions else [self._jobs]
        allow(grantee, [f"bedrock:{action}" for action in actions], resources, reason=JOB_ARN_REASON)

    def grant_pass_role(self, grantee: iam.IGrantable) -> None:
        """CreateModelInvocationJob passes the job role: this role only, to Bedrock only."""
        allow(
            grantee,
            ["iam:PassRole"],
            [self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": BEDROCK}},
        )
