"""Bedrock and OpenAI access: a role Bedrock alone may assume, held to the job prefixes, passed by start-job
only; the OpenAI key's secret readable by the functions that call OpenAI, only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.stack import OsbatchStack
from tests.infra.helpers import (
    Synthesized,
    actions,
    as_list,
    new_app,
    pipeline,
    render,
    resources_for,
    statements,
    statements_of_role,
)

BEDROCK = {
    "inference": {
        "backend": "bedrock",
        "sagemaker": None,
        "bedrock": {"model_id": "amazon.titan-embed-text-v2:0", "family": "titan-embed-text-v2"},
    }
}


OPENAI = {
    "inference": {
        "backend": "openai",
        "sagemaker": None,
        "openai": {"api_key_secret": "osbatch/openai-api-key", "model": "text-embedding-3-small"},
    }
}


@pytest.fixture(scope="module")
def bedrock_stack() -> Iterator[Synthesized]:
    # Given a stack with a SageMaker pipeline and a Bedrock pipeline
    app = new_app()
    stack = OsbatchStack(
        app,
        "osbatch-bedrock",
        pipelines=[
            pipeline(),
            pipeline(name="docs-titan", **BEDROCK),
            pipeline(name="docs-openai", **OPENAI),
        ],
    )
    # When it is synthesized
    yield Synthesized.of(stack)


def job_role(synth: Synthesized) -> str:
    (role_id,) = [
        logical_id
        for logical_id, role in synth.of_type("AWS::IAM::Role").items()
        if "bedrock.amazonaws.com" in render(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    return role_id


def test_only_bedrock_for_this_account_assumes_the_job_role(bedrock_stack: Synthesized) -> None:
    # Then the trust policy names Bedrock, the account and invocation jobs
    trust = bedrock_stack.resources[job_role(bedrock_stack)]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    assert "model-invocation-job/*" in render(statement["Condition"]["ArnLike"]["aws:SourceArn"])


def test_the_job_role_reads_job_input_and_writes_job_output_only(bedrock_stack: Synthesized) -> None:
    granted = {
        action: [render(resource) for resource in as_list(s["Resource"])]
        for s in statements_of_role(bedrock_stack, job_role(bedrock_stack))
        for action in as_list(s["Action"])
    }
    # Then S3 access is held to the job prefixes, and the model is the pipeline's
    assert set(granted) == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "bedrock:InvokeModel"}
    assert all(resource.endswith("/jobs/*/input/*") for resource in granted["s3:GetObject"])
    assert all(resource.endswith("/jobs/*/output/*") for resource in granted["s3:PutObject"])
    assert granted["bedrock:InvokeModel"][0].endswith("foundation-model/amazon.titan-embed-text-v2:0")


def test_start_job_passes_the_job_role_only_and_only_to_bedrock(bedrock_stack: Synthesized) -> None:
    # Then PassRole names the one role, with the service condition, and no other function has it
    (passing,) = [s for s in statements(bedrock_stack, "start-job") if "iam:PassRole" in as_list(s["Action"])]
    assert render(passing["Resource"]) == f"<{job_role(bedrock_stack)}.Arn>"
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert "bedrock:CreateModelInvocationJob" in actions(bedrock_stack, "start-job")
    assert {"bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"} <= actions(
        bedrock_stack, "poll-job"
    )
    for function in ("poll-job", "fail-job", "prepare", "ingest-chunk"):
        assert "iam:PassRole" not in actions(bedrock_stack, function)
    assert any(
        "model-invocation-job/*" in r
        for r in resources_for(bedrock_stack, "fail-job", "bedrock:StopModelInvocationJob")
    )


def test_the_join_has_exactly_the_access_it_needs(bedrock_stack: Synthesized) -> None:
    # Then prepare writes source records, plan-ingest reads them with the output (and batch requests) and
    # writes the join and the dead letters of records the output lacks, and ingest reads the join
    assert any(
        r.endswith("/jobs/*/source/*") for r in resources_for(bedrock_stack, "prepare", "s3:PutObject")
    )
    read = resources_for(bedrock_stack, "plan-ingest", "s3:GetObject")
    assert {r.rsplit("/jobs/", 1)[1] for r in read} == {"*/source/*", "*/output/*", "*/batch-request.json"}
    assert any(
        r.endswith("/dead-letter/*") for r in resources_for(bedrock_stack, "plan-ingest", "s3:DeleteObject")
    )
    assert any(
        r.endswith("/jobs/*/joined/*") for r in resources_for(bedrock_stack, "plan-ingest", "s3:PutObject")
    )
    assert any(
        r.endswith("/jobs/*/joined/*") for r in resources_for(bedrock_stack, "ingest-chunk", "s3:GetObject")
    )


def test_the_openai_key_is_readable_by_its_callers_only(
    bedrock_stack: Synthesized,
) -> None:
    # Then start-job, poll-job, plan-ingest and fail-job may read the one secret, and nobody else may
    for function in ("start-job", "poll-job", "plan-ingest", "fail-job"):
        (arn,) = resources_for(bedrock_stack, function, "secretsmanager:GetSecretValue")
        assert arn.endswith(":secret:osbatch/openai-api-key-??????")
    for function in ("submit", "prepare", "ingest-chunk", "finalize"):
        assert "secretsmanager:GetSecretValue" not in actions(bedrock_stack, function)
