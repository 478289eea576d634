"""OpenAI Batch API access: the functions that call the API may read the pipelines' API-key secrets, only.

The key stays in Secrets Manager; the functions read it at run time (backends/openai_http.py), so it is in
no environment variable, template or state payload.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import allow
from osbatch.infra_facts import PipelineConfig

# The steps that talk to OpenAI: create (start-job), retrieve and cancel (poll-job, fail-job), download
# the output and error files (plan-ingest).
OPENAI_CALLERS = ("start-job", "poll-job", "plan-ingest", "fail-job")


def secret_arns(scope: Construct, pipelines: Sequence[PipelineConfig]) -> list[str]:
    stack = Stack.of(scope)
    arns = set()
    for config in pipelines:
        if config.inference.openai is None:
            continue
        secret = config.inference.openai.api_key_secret
        if secret.startswith("arn:"):
            arns.add(secret)
        else:
            # A secret's ARN ends in its name plus "-" and six random characters.
            arns.add(
                stack.format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=f"{secret}-??????",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            )
    return sorted(arns)


def grant_openai_secrets(
    scope: Construct, roles: Sequence[iam.IRole], pipelines: Sequence[PipelineConfig]
) -> None:
    arns = secret_arns(scope, pipelines)
    if not arns:
        return
    for role in roles:
        allow(role, ["secretsmanager:GetSecretValue"], arns)
