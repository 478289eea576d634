"""Least privilege: each function can do what its row in docs/architecture.md needs, and nothing else."""

from __future__ import annotations

from infra.functions import FUNCTIONS
from tests.infra.helpers import (
    Synthesized,
    actions,
    all_allow_statements,
    as_list,
    render,
    resources_for,
    role_id,
    statements,
    statements_of_role,
)

EVERY_FUNCTION = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
SEARCH = {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"}
SQS_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
WRITE = {"s3:PutObject", "s3:AbortMultipartUpload"}
REWRITE = {*WRITE, "s3:DeleteObject"}
# The calls each handler makes (lambdas/osbatch/steps, jobs.py, ingest/), and nothing more.
EXPECTED = {
    "submit": {
        "s3:GetObject", "s3:ListBucket", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "states:StartExecution", *SQS_CONSUME,
    },
    "prepare": {"s3:GetObject", *REWRITE, "dynamodb:UpdateItem", *SEARCH},
    "start-job": {
        "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query",
        "sagemaker:CreateTransformJob", "sagemaker:AddTags", "sagemaker:DescribeTransformJob",
    },
    "poll-job": {"dynamodb:UpdateItem", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"},
    "plan-ingest": {"s3:ListBucket", "s3:PutObject", "dynamodb:GetItem", "dynamodb:UpdateItem", *SEARCH},
    "ingest-chunk": {
        "s3:GetObject", *REWRITE, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", *SEARCH,
    },
    "finalize": {"s3:PutObject", "dynamodb:Query", "dynamodb:UpdateItem", "events:PutEvents", *SEARCH},
    "fail-job": {
        "s3:PutObject", "dynamodb:Query", "dynamodb:UpdateItem", "events:PutEvents",
        "sagemaker:StopTransformJob", *SEARCH, "s3:GetObject", *REWRITE, "dynamodb:GetItem",
        "dynamodb:PutItem",
    },
}  # fmt: skip
# Actions AWS authorizes on no resource narrower than "*"; each is acknowledged to cdk-nag with this reason.
STAR_ONLY = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",
    "ecr:GetAuthorizationToken",
}


def _sagemaker_role(main: Synthesized) -> str:
    (role,) = [k for k in main.of_type("AWS::IAM::Role") if k.startswith("InferenceSageMakerRole")]
    return role


def test_each_function_has_exactly_its_documented_actions(main: Synthesized) -> None:
    # Given each function's role
    for name in FUNCTIONS:
        # Then its actions are those of its row, plus logging and tracing
        assert actions(main, name) == EXPECTED[name] | EVERY_FUNCTION, name


def test_no_action_wildcards_and_star_resources_only_where_aws_requires(synth_all: list[Synthesized]) -> None:
    for synthesized in synth_all:
        # Given every Allow statement of every IAM policy in the stack
        for statement in all_allow_statements(synthesized):
            statement_actions = as_list(statement["Action"])
            # Then no action is a wildcard
            assert not [a for a in statement_actions if "*" in a], statement
            # And Resource "*" only appears for actions that have no resource-level permissions
            if "*" in as_list(statement["Resource"]):
                assert set(statement_actions) <= STAR_ONLY, statement


def test_no_function_can_pass_a_role(synth_all: list[Synthesized]) -> None:
    for synthesized in synth_all:
        # Given every Allow statement of every policy in the stack
        passing = [s for s in all_allow_statements(synthesized) if "iam:PassRole" in as_list(s["Action"])]
        # Then none passes a role: CreateTransformJob takes none (the user's SageMaker model names it)
        assert passing == []


def test_transform_job_actions_are_held_to_the_osb_prefix(main: Synthesized) -> None:
    # Given every SageMaker grant of every function
    for name in FUNCTIONS:
        for action in sorted(a for a in actions(main, name) if a.startswith("sagemaker:")):
            # Then it covers only transform jobs named osb-*
            (resource,) = resources_for(main, name, action)
            assert resource.endswith(":transform-job/osb-*"), (name, action, resource)


def test_submit_starts_only_the_job_workflow(main: Synthesized) -> None:
    # Given submit's states:StartExecution grant
    (resource,) = resources_for(main, "submit", "states:StartExecution")

    # Then it is the workflow's name-derived ARN (no reference to the resource, so no dependency cycle)
    assert resource == "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:osbatch-jobs"


def _keys(main: Synthesized, function: str, action: str) -> list[str]:
    return sorted(r.split(".Arn>")[1] for r in resources_for(main, function, action))


def test_object_grants_are_held_to_their_key_prefixes(main: Synthesized) -> None:
    # Given the S3 object grants
    # Then inputs are read only under the pipelines' prefixes
    assert _keys(main, "submit", "s3:GetObject") == ["/input/docs/*", "/input/python-docs/*"]
    assert _keys(main, "prepare", "s3:GetObject") == ["/input/docs/*", "/input/python-docs/*"]
    # And each writer reaches only its own part of the layout
    assert _keys(main, "prepare", "s3:PutObject") == ["/dead-letter/*", "/jobs/*/input/*"]
    assert _keys(main, "plan-ingest", "s3:PutObject") == ["/jobs/*/chunks.json"]
    assert _keys(main, "ingest-chunk", "s3:GetObject") == ["/jobs/*/output/*"]
    assert _keys(main, "ingest-chunk", "s3:PutObject") == ["/dead-letter/*"]
    assert _keys(main, "finalize", "s3:PutObject") == ["/reports/*.json"]
    assert _keys(main, "fail-job", "s3:PutObject") == ["/dead-letter/*", "/reports/*.json"]
    assert _keys(main, "fail-job", "s3:GetObject") == ["/jobs/*/chunks.json", "/jobs/*/output/*"]


def test_listing_is_held_to_key_prefixes(main: Synthesized) -> None:
    for function, prefixes in (
        ("submit", ["input/python-docs/*", "input/docs/*"]),
        ("plan-ingest", ["jobs/*"]),
    ):
        # Given a function's ListBucket grant
        (statement,) = [s for s in statements(main, function) if "s3:ListBucket" in as_list(s["Action"])]
        # Then it lists only under the prefixes it reads
        assert statement["Condition"] == {"StringLike": {"s3:prefix": prefixes}}, function


def test_the_pipeline_index_is_queried_only_by_start_job(main: Synthesized) -> None:
    # Given the DynamoDB Query grants
    queries = {name: resources_for(main, name, "dynamodb:Query") for name in FUNCTIONS}

    # Then start-job queries the by-pipeline index (jobs in flight); finalize and fail-job the job's own rows
    assert [r.endswith(".Arn>/index/by-pipeline") for r in queries["start-job"]] == [True]
    assert [r.endswith(".Arn>") for r in queries["finalize"]] == [True]
    assert [r.endswith(".Arn>") for r in queries["fail-job"]] == [True]
    assert {name for name, found in queries.items() if found} == {"start-job", "finalize", "fail-job"}


def test_search_functions_reach_only_the_configured_domains(main: Synthesized) -> None:
    # Given the ESHttp grants of the search functions
    for name in ("prepare", "plan-ingest", "ingest-chunk", "finalize", "fail-job"):
        resources = resources_for(main, name, "es:ESHttpPost")
        # Then they name the two domains derived from the endpoints, in their regions
        assert sorted(resources) == [
            "arn:<AWS::Partition>:es:eu-west-1:<AWS::AccountId>:domain/other-domain",
            "arn:<AWS::Partition>:es:eu-west-1:<AWS::AccountId>:domain/other-domain/*",
            "arn:<AWS::Partition>:es:us-east-1:<AWS::AccountId>:domain/my-domain",
            "arn:<AWS::Partition>:es:us-east-1:<AWS::AccountId>:domain/my-domain/*",
        ], name


def test_sagemaker_role_is_for_sagemaker_and_job_data_only(main: Synthesized) -> None:
    # Given the role SageMaker assumes
    role = main.resources[_sagemaker_role(main)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    # Then only SageMaker, acting for this account, can assume it
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # And it reads job inputs and writes job outputs, nothing else in the bucket
    s3 = {
        action: [render(r) for r in as_list(s["Resource"])]
        for s in statements_of_role(main, _sagemaker_role(main))
        for action in as_list(s["Action"])
        if action.startswith("s3:")
    }
    assert [r.split(".Arn>")[1] for r in s3["s3:GetObject"]] == ["/jobs/*/input/*"]
    assert [r.split(".Arn>")[1] for r in s3["s3:PutObject"]] == ["/jobs/*/output/*"]


def test_functions_have_no_managed_policies(main: Synthesized) -> None:
    # Given the function roles
    for name in FUNCTIONS:
        role = main.resources[role_id(main, name)]["Properties"]
        # Then none carries a managed policy (AWSLambdaBasicExecutionRole would allow every log group)
        assert "ManagedPolicyArns" not in role, name
        # And each writes logs only to its own log group
        (log_statement,) = [s for s in statements(main, name) if "logs:PutLogEvents" in as_list(s["Action"])]
        assert render(log_statement["Resource"]).endswith(".Arn>"), name
