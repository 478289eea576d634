"""Trusts and grants held to what the stack names: the audit's confused-deputy and scoping findings."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from infra.batch_ingest import buckets_from_context
from infra.stack import OsbatchStack
from tests.infra.helpers import (
    BATCH,
    BATCH_SOURCE_BUCKET,
    Synthesized,
    all_allow_statements,
    as_list,
    new_app,
    pipeline,
    render,
    statements,
    statements_of_role,
)

PREFIX = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"


def _create_statements(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in found if "sagemaker:CreateTransformJob" in as_list(s["Action"])]


def test_start_job_creates_transform_jobs_only_with_the_configured_model(main: Synthesized) -> None:
    # Given start-job's CreateTransformJob grant
    (create,) = _create_statements(statements(main, "start-job"))
    # Then it names osbatch's jobs, and only with the pipelines' model (sagemaker.ModelName), alone in its
    # statement (AddTags and DescribeTransformJob have no such key, and would never match)
    assert as_list(create["Action"]) == ["sagemaker:CreateTransformJob"]
    assert render(create["Resource"]) == f"{PREFIX}transform-job/osb-*"
    assert [render(arn) for arn in as_list(create["Condition"]["ArnLike"]["sagemaker:ModelArn"])] == [
        f"{PREFIX}model/minilm-embedder"
    ]


def test_the_connector_role_creates_transform_jobs_only_with_the_connectors_model() -> None:
    # Given an ml-commons pipeline: its connector role runs the transform jobs
    stack = OsbatchStack(new_app(), "batch", pipelines=[pipeline(**BATCH)])
    synth = Synthesized(stack, Template.from_stack(stack))
    (role,) = [k for k in synth.of_type("AWS::IAM::Role") if "ConnectorRole" in k]
    (create,) = _create_statements(statements_of_role(synth, role))
    # Then only with ml_commons.sagemaker.ModelName
    assert [render(arn) for arn in as_list(create["Condition"]["ArnLike"]["sagemaker:ModelArn"])] == [
        f"{PREFIX}model/minilm-embedder"
    ]
    # And a stack on another backend lets start-job create none at all
    assert _create_statements(statements(synth, "start-job")) == []


def test_the_workflow_role_trusts_only_this_state_machine(main: Synthesized) -> None:
    # Given the state machine's role
    (machine,) = main.of_type("AWS::StepFunctions::StateMachine").values()
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    (trust,) = main.resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # Then Step Functions may assume it for osbatch-jobs and its Distributed Map children, not stateMachine:*
    arn = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:osbatch-jobs"
    assert [render(a) for a in trust["Condition"]["ArnLike"]["aws:SourceArn"]] == [arn, f"{arn}/*"]
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_domain_log_policy_admits_opensearch_for_this_domain_only(created: Synthesized) -> None:
    # Given the log groups' resource policy of a created domain
    (policy,) = created.of_type("AWS::Logs::ResourcePolicy").values()
    document = policy["Properties"]["PolicyDocument"]
    text = document if isinstance(document, str) else render(document)
    # Then the service writes for this account and this domain's ARN (named after the stack id) only
    assert '"aws:SourceAccount"' in text.replace('\\"', '"')
    assert ":domain/osbatch-created-" in text and '"aws:SourceArn"' in text.replace('\\"', '"')


def test_sagemaker_writes_its_own_log_group_which_the_stack_keeps_with_a_retention(main: Synthesized) -> None:
    # Given the SageMaker role's log grants and the stack's log groups
    groups = [g["Properties"] for g in main.of_type("AWS::Logs::LogGroup").values()]
    (transform,) = [g for g in groups if g.get("LogGroupName") == "/aws/sagemaker/TransformJobs"]
    # Then the stack creates SageMaker's log group with a retention, and the role cannot create any
    assert transform["RetentionInDays"] > 0
    role_actions = {a for s in all_allow_statements(main) for a in as_list(s["Action"])}
    assert "logs:CreateLogGroup" not in role_actions


def test_an_account_that_has_the_log_group_keeps_it() -> None:
    # Given context sagemaker_log_group=existing
    app = new_app()
    app.node.set_context("sagemaker_log_group", "existing")
    stack = OsbatchStack(app, "osbatch", pipelines=[pipeline()])
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    # Then the stack leaves it alone
    assert not [
        g for g in groups.values() if g["Properties"].get("LogGroupName") == "/aws/sagemaker/TransformJobs"
    ]


def test_a_configured_image_holds_pulls_to_its_repository() -> None:
    # Given a model whose image URI is given
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.29.0-cpu-full"
    config = pipeline(inference={"sagemaker_model": {"image": image}})
    stack = OsbatchStack(new_app(), "osbatch", pipelines=[config])
    synth = Synthesized(stack, Template.from_stack(stack))
    (role,) = [k for k in synth.of_type("AWS::IAM::Role") if k.startswith("InferenceSageMakerRole")]
    pulls = [s for s in statements_of_role(synth, role) if "ecr:BatchGetImage" in as_list(s["Action"])]
    # Then pulls reach that one repository, in no account's other repositories
    assert [render(r) for s in pulls for r in as_list(s["Resource"])] == [
        "arn:<AWS::Partition>:ecr:us-east-1:763104351884:repository/djl-inference"
    ]


def test_batch_ingest_buckets_are_read_only_while_their_owner_is_the_expected_account() -> None:
    # Given one bucket of the stack's account and one another account owns
    buckets = buckets_from_context(f"{BATCH_SOURCE_BUCKET},partner-exports:444455556666")
    stack = OsbatchStack(new_app(), "osbatch", pipelines=[pipeline()], batch_ingest_buckets=buckets)
    synth = Synthesized(stack, Template.from_stack(stack))
    # Then each is read only with s3:ResourceAccount naming its owner
    owners = {
        render(s["Resource"]): json.dumps(s["Condition"]["StringEquals"]["s3:ResourceAccount"])
        for s in statements(synth, "ingest-chunk")
        if "Condition" in s and "s3:ResourceAccount" in s["Condition"].get("StringEquals", {})
    }
    assert owners == {
        f"arn:<AWS::Partition>:s3:::{BATCH_SOURCE_BUCKET}/*": json.dumps({"Ref": "AWS::AccountId"}),
        "arn:<AWS::Partition>:s3:::partner-exports/*": '"444455556666"',
    }


def test_the_sagemaker_role_trusts_the_ml_commons_model_and_its_regions_jobs() -> None:
    # Given an ml-commons pipeline whose connector runs transform jobs in another region
    config = pipeline(
        **{
            **BATCH,
            "inference": {
                **BATCH["inference"],
                "ml_commons": {**BATCH["inference"]["ml_commons"], "region": "eu-west-1"},
            },
        }
    )
    stack = OsbatchStack(new_app(), "batch", pipelines=[config])
    synth = Synthesized(stack, Template.from_stack(stack))
    (role,) = [k for k in synth.of_type("AWS::IAM::Role") if k.startswith("InferenceSageMakerRole")]
    (trust,) = synth.resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # Then SageMaker may assume the model's role for that model and for osb-* jobs there, not elsewhere
    sources = [render(arn) for arn in trust["Condition"]["ArnLike"]["aws:SourceArn"]]
    assert sources == [
        f"{PREFIX}transform-job/osb-*",
        "arn:<AWS::Partition>:sagemaker:eu-west-1:<AWS::AccountId>:transform-job/osb-*",
        "arn:<AWS::Partition>:sagemaker:eu-west-1:<AWS::AccountId>:model/minilm-embedder",
    ]
