"""Least privilege: each function can do what its row in docs/architecture.md needs, and nothing else."""

from __future__ import annotations

import re

from infra.functions import FUNCTIONS
from tests.infra.helpers import (
    BATCH_SOURCE_BUCKET,
    FACTORY_FUNCTIONS,
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
INDEX_CHECKS = {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPut"}
BULK = {"es:ESHttpPost"}
LOAD = {"es:ESHttpGet", "es:ESHttpPut", "es:ESHttpPost"}  # search/bulk_load.py: _settings, _count, _refresh
# osbatch/incremental: put _mapping, _mget, _bulk (prepare); _count, _refresh, _delete_by_query (finalize)
INCREMENTAL = {"es:ESHttpGet", "es:ESHttpPut", "es:ESHttpPost"}
SQS_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
WRITE = {"s3:PutObject", "s3:AbortMultipartUpload"}
REWRITE = {*WRITE, "s3:DeleteObject"}
# The calls each handler makes (lambdas/osbatch/steps, dal/jobs.py, ingest/), and nothing more.
EXPECTED = {
    "submit": {
        "s3:GetObject", "s3:ListBucket", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "states:StartExecution", *SQS_CONSUME,
    },
    "prepare": {"s3:GetObject", *REWRITE, "dynamodb:UpdateItem", *INDEX_CHECKS, *INCREMENTAL},
    "start-job": {
        "dynamodb:GetItem", "dynamodb:UpdateItem",
        "sagemaker:CreateTransformJob", "sagemaker:AddTags", "sagemaker:DescribeTransformJob",
    },
    "poll-job": {
        "dynamodb:GetItem", "dynamodb:UpdateItem", "states:SendTaskSuccess",
        "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
    },
    "park-job": {"dynamodb:UpdateItem", "states:SendTaskSuccess"},
    "wake-job": {"dynamodb:GetItem", "dynamodb:UpdateItem", "states:SendTaskSuccess"},
    "plan-ingest": {
        "s3:ListBucket", "s3:GetObject", "s3:PutObject", "dynamodb:GetItem", "dynamodb:UpdateItem",
        *INDEX_CHECKS, *LOAD,
    },
    "ingest-chunk": {
        "s3:GetObject", *REWRITE, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", *BULK,
    },
    "finalize": {
        "s3:PutObject", "s3:AbortMultipartUpload", "dynamodb:Query", "dynamodb:UpdateItem",
        "events:PutEvents", *LOAD, "s3:GetObject", *REWRITE, "dynamodb:GetItem", "dynamodb:PutItem",
        *INCREMENTAL, "states:SendTaskSuccess",
    },
    "fail-job": {
        "s3:PutObject", "s3:AbortMultipartUpload", "dynamodb:Query", "dynamodb:UpdateItem",
        "events:PutEvents", "sagemaker:StopTransformJob", *LOAD, "s3:GetObject", *REWRITE,
        "dynamodb:GetItem", "dynamodb:PutItem", "states:SendTaskSuccess",
        # The safety net's entry point reads the execution's history (infra/sweep.py).
        "states:GetExecutionHistory",
    },
}  # fmt: skip
# Every statement whose Resource is "*", by the role it belongs to, with its exact actions and condition:
# actions AWS authorizes on no narrower resource. Each role's IAM5[Resource::*] acknowledgement covers
# whatever such statement it has, so this list is what keeps a new one from passing unseen.
XRAY = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
STAR_STATEMENTS = {
    **{f"function {name}": [(XRAY, None)] for name in FACTORY_FUNCTIONS},
    "state machine": [
        (
            (
                "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                "logs:PutResourcePolicy", "logs:UpdateLogDelivery", "xray:GetSamplingRules",
                "xray:GetSamplingTargets", *XRAY,
            ),
            None,
        )
    ],
    "sagemaker": [
        (("cloudwatch:PutMetricData",), {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
        (("ecr:GetAuthorizationToken",), None),
    ],
}  # fmt: skip


def _sagemaker_role(main: Synthesized) -> str:
    (role,) = [k for k in main.of_type("AWS::IAM::Role") if k.startswith("InferenceSageMakerRole")]
    return role


def test_each_function_has_exactly_its_documented_actions(main: Synthesized) -> None:
    # Given each function's role
    for name in FUNCTIONS:
        # Then its actions are those of its row, plus logging and tracing
        assert actions(main, name) == EXPECTED[name] | EVERY_FUNCTION, name


def _owner(synth: Synthesized, role: str) -> str:
    names = {role_id(synth, name): f"function {name}" for name in FACTORY_FUNCTIONS}
    if role in names:
        return names[role]
    if role.startswith("WorkflowStateMachineRole"):
        return "state machine"
    # Any other role is named by its logical id, so a new one with a "*" statement fails the comparison.
    return "sagemaker" if role.startswith("InferenceSageMakerRole") else role


def test_no_action_wildcards_and_exactly_the_pinned_star_statements(synth_all: list[Synthesized]) -> None:
    for synthesized in synth_all:
        # Given every Allow statement of every IAM policy in the stack
        for statement in all_allow_statements(synthesized):
            # Then no action is a wildcard
            assert not [a for a in as_list(statement["Action"]) if "*" in a], statement
        # And the statements on Resource "*" are exactly the pinned ones, action for action, role by role
        star: dict[str, list[tuple[tuple[str, ...], object]]] = {}
        for policy in synthesized.of_type("AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "*" in as_list(statement["Resource"]):
                    for role in policy["Properties"]["Roles"]:
                        star.setdefault(_owner(synthesized, role["Ref"]), []).append(
                            (tuple(sorted(as_list(statement["Action"]))), statement.get("Condition"))
                        )
        assert {owner: sorted(found, key=str) for owner, found in star.items()} == {
            owner: sorted(((tuple(sorted(a)), c) for a, c in pinned), key=str)
            for owner, pinned in STAR_STATEMENTS.items()
        }
        # And no role carries an inline policy that the check above would miss
        for role in synthesized.of_type("AWS::IAM::Role").values():
            assert "Policies" not in role["Properties"]


def test_only_search_provisioning_passes_a_role_and_only_the_connector_role(
    synth_all: list[Synthesized],
) -> None:
    for synthesized in synth_all:
        # Given every Allow statement of every policy in the stack
        passing = [s for s in all_allow_statements(synthesized) if "iam:PassRole" in as_list(s["Action"])]
        # Then no job function passes a role: CreateTransformJob takes none (the user's model names it)
        # And the provisioning function passes exactly the connector role, to the connectors it creates
        (connector_role,) = [k for k in synthesized.of_type("AWS::IAM::Role") if "ConnectorRole" in k]
        # And only to OpenSearch Service (its service principal, or its legacy one)
        assert passing == [
            {
                "Action": "iam:PassRole",
                "Condition": {
                    "StringEquals": {
                        "iam:PassedToService": ["opensearchservice.amazonaws.com", "es.amazonaws.com"]
                    }
                },
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [connector_role, "Arn"]},
            }
        ]
        assert passing[0] in statements(synthesized, "provision-search")


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
    """Keys in the stack's own buckets (other buckets' ARNs are literal: see the batch-ingest test)."""
    return sorted(r.split(".Arn>")[1] for r in resources_for(main, function, action) if ".Arn>" in r)


def test_batch_requests_read_only_their_staged_objects_and_the_allowed_source_buckets(
    main: Synthesized,
) -> None:
    # Given a stack with context batch_ingest_buckets = offlinebatch
    others = {
        function: sorted(r for r in resources_for(main, function, "s3:GetObject") if ".Arn>" not in r)
        for function in FUNCTIONS
    }
    # Then only the functions that read a request's files may read that bucket, and no other bucket
    source = f"arn:<AWS::Partition>:s3:::{BATCH_SOURCE_BUCKET}/*"
    assert {function: found for function, found in others.items() if found} == {
        "ingest-chunk": [source],
        "finalize": [source],
        "fail-job": [source],
    }
    # And the staged request and files are read only by the steps that run a request
    assert "/jobs/*/batch-request.json" in _keys(main, "plan-ingest", "s3:GetObject")
    assert {"/jobs/*/batch-request.json", "/jobs/*/batch-files/*"} <= set(
        _keys(main, "ingest-chunk", "s3:GetObject")
    )


def test_object_grants_are_held_to_their_key_prefixes(main: Synthesized) -> None:
    # Given the S3 object grants
    # Then inputs are read only under the pipelines' prefixes
    assert _keys(main, "submit", "s3:GetObject") == ["/input/docs/*", "/input/python-docs/*"]
    # (and its own parts, which rebalancing the last remote job reads back)
    assert _keys(main, "prepare", "s3:GetObject") == [
        "/input/docs/*",
        "/input/python-docs/*",
        "/jobs/*/input/*",
    ]
    # And each writer reaches only its own part of the layout
    assert _keys(main, "prepare", "s3:PutObject") == [
        "/dead-letter/*",
        "/jobs/*/input/*",
        "/jobs/*/parts.json",
    ]
    assert _keys(main, "plan-ingest", "s3:PutObject") == ["/jobs/*/plans/*.json"]
    assert _keys(main, "ingest-chunk", "s3:GetObject") == [
        "/jobs/*/batch-files/*",
        "/jobs/*/batch-request.json",
        "/jobs/*/output/*",
    ]
    assert _keys(main, "ingest-chunk", "s3:PutObject") == ["/dead-letter/*"]
    assert _keys(main, "finalize", "s3:PutObject") == ["/dead-letter/*", "/reports/*.json"]
    assert _keys(main, "fail-job", "s3:PutObject") == ["/dead-letter/*", "/reports/*.json"]
    # And the steps that settle unreported chunks and diff short outputs read plans, outputs and inputs
    for settler in ("finalize", "fail-job"):
        assert _keys(main, settler, "s3:GetObject") == [
            "/jobs/*/batch-files/*",
            "/jobs/*/input/*",
            "/jobs/*/output/*",
            "/jobs/*/parts.json",
            "/jobs/*/plans/*.json",
        ], settler


def test_listing_is_held_to_key_prefixes(main: Synthesized) -> None:
    for function, prefixes in (
        ("submit", ["input/python-docs/*", "input/docs/*"]),
        ("plan-ingest", ["jobs/*"]),
    ):
        # Given a function's ListBucket grant
        (statement,) = [s for s in statements(main, function) if "s3:ListBucket" in as_list(s["Action"])]
        # Then it lists only under the prefixes it reads
        assert statement["Condition"] == {"StringLike": {"s3:prefix": prefixes}}, function


def test_only_finalize_and_fail_job_query_and_only_the_table_itself(main: Synthesized) -> None:
    # Given the DynamoDB Query grants
    queries = {name: resources_for(main, name, "dynamodb:Query") for name in FUNCTIONS}

    # Then finalize and fail-job query the job's own rows (its chunks) and no function queries the
    # by-pipeline index: the job slots are one item with a conditional write, so start-job counts nothing
    assert [r.endswith(".Arn>") for r in queries["finalize"]] == [True]
    assert [r.endswith(".Arn>") for r in queries["fail-job"]] == [True]
    assert {name for name, found in queries.items() if found} == {"finalize", "fail-job"}
    assert not any("/index/" in r for found in queries.values() for r in found)


US = "arn:<AWS::Partition>:es:us-east-1:<AWS::AccountId>:domain/my-domain"
EU = "arn:<AWS::Partition>:es:eu-west-1:<AWS::AccountId>:domain/other-domain"


def test_index_checkers_reach_only_their_pipelines_indices_in_each_domains_region(main: Synthesized) -> None:
    # Given python-docs on my-domain in us-east-1 and docs on other-domain in eu-west-1
    def paths(*suffixes: str) -> list[str]:
        return sorted(f"{domain}/{index}{suffix}" for domain, index in ((EU, "docs"), (US, "python-docs"))
                      for suffix in suffixes)  # fmt: skip

    # Then creating and checking an index is granted on exactly each pipeline's index, in its region
    # (and, for incremental re-embedding, putting osbatch's fields in its mapping, reading fingerprints with
    # _mget and updating unchanged documents with _bulk; _count, _refresh and _delete_by_query for Finalize)
    incremental_gets = ("/_mget", "/_search")
    incremental_posts = ("/_mget", "/_bulk", "/_search", "/_delete_by_query")
    assert sorted(resources_for(main, "prepare", "es:ESHttpPut")) == paths("", "/_mapping")
    assert sorted(resources_for(main, "prepare", "es:ESHttpHead")) == paths("")
    assert sorted(resources_for(main, "prepare", "es:ESHttpGet")) == paths("/_mapping", *incremental_gets)
    assert sorted(resources_for(main, "prepare", "es:ESHttpPost")) == paths(*incremental_posts)
    # And plan-ingest, which also relaxes a new index for its load, gets that on the same indices only,
    # as do finalize and fail-job, which restore it
    assert sorted(resources_for(main, "plan-ingest", "es:ESHttpPut")) == paths("", "/_settings")
    assert sorted(resources_for(main, "plan-ingest", "es:ESHttpGet")) == paths(
        "/_mapping", "/_settings", "/_count"
    )
    for name in ("plan-ingest", "fail-job"):
        assert sorted(resources_for(main, name, "es:ESHttpPost")) == paths("/_count", "/_refresh"), name
    assert sorted(resources_for(main, "finalize", "es:ESHttpPost")) == paths(
        "/_count", "/_refresh", *incremental_posts
    )


def test_ingest_chunk_may_only_bulk_into_the_pipelines_indices(main: Synthesized) -> None:
    # Given ingest-chunk's grants on the domains
    # Then it may POST /<index>/_bulk on each pipeline's index, and nothing else on any domain
    assert sorted(resources_for(main, "ingest-chunk", "es:ESHttpPost")) == [
        f"{EU}/docs/_bulk",
        f"{US}/python-docs/_bulk",
    ]
    assert {a for a in actions(main, "ingest-chunk") if a.startswith("es:")} == {"es:ESHttpPost"}


PIPELINE_PATHS = (
    r"(/(python-docs|docs)(/_mapping|/_bulk|/_settings|/_count|/_refresh|/_mget|/_search|/_delete_by_query)?"
    r"|/_search/pipeline/[a-z0-9-]+)$"
)
# The ML Commons calls, each by its own path: an id wildcard stands for one generated id, never for a call.
ML_COMMONS_CALLS = (
    r"/_plugins/_ml/(connectors/_create|models/_search|models/_register|tasks/_search"
    r"|models/\*/(_deploy|_undeploy|_batch_predict)|tasks/\*(/_cancel)?|connectors/\*|models/\*)$"
)


def test_no_grant_reaches_a_whole_domain(synth_all: list[Synthesized]) -> None:
    for synthesized in synth_all:
        # Given every OpenSearch grant of the stack (identity policies and a created domain's policy)
        es = [
            s
            for s in all_allow_statements(synthesized)
            if any(a.startswith("es:") for a in as_list(s["Action"]))
        ]
        for domain in synthesized.of_type("AWS::OpenSearchService::Domain").values():
            es.extend(domain["Properties"]["AccessPolicies"]["Statement"])
        assert es
        # Then each names a path under a pipeline's index or one of its search pipelines, never the domain,
        # a wildcard, or another path: cluster settings, snapshots and other indices stay out of reach.
        # The one wildcard is the ids ML Commons generates, which only search provisioning is granted.
        for statement in es:
            for resource in as_list(statement["Resource"]):
                path = resource["Fn::Join"][1][-1] if isinstance(resource, dict) else resource
                if re.search(ML_COMMONS_CALLS, path):
                    continue
                assert re.search(PIPELINE_PATHS, path), render(resource)
                assert "*" not in render(resource), render(resource)


def test_sagemaker_role_is_for_sagemaker_and_job_data_only(main: Synthesized) -> None:
    # Given the role SageMaker assumes
    role = main.resources[_sagemaker_role(main)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    # Then only SageMaker, acting for this account, for osbatch's transform jobs or the configured models,
    # can assume it
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    sources = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
    assert [render(arn) for arn in trust["Condition"]["ArnLike"]["aws:SourceArn"]] == [
        f"{sources}transform-job/osb-*",
        f"{sources}model/minilm-embedder",
    ]
    # And it reads job inputs and writes job outputs, nothing else in the bucket
    s3 = _sagemaker_grants(main, "s3:")
    assert [r.split(".Arn>")[1] for r in s3["s3:GetObject"] if ".Arn>" in r] == ["/jobs/*/input/*"]
    assert [r.split(".Arn>")[1] for r in s3["s3:PutObject"]] == ["/jobs/*/output/*"]


def _sagemaker_grants(synth: Synthesized, prefix: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for s in statements_of_role(synth, _sagemaker_role(synth)):
        for action in as_list(s["Action"]):
            if action.startswith(prefix):
                found.setdefault(action, []).extend(render(r) for r in as_list(s["Resource"]))
    return found


def test_sagemaker_reads_exactly_the_configured_model_artifacts_and_their_key(main: Synthesized) -> None:
    # Given the docs pipeline's model: model.tar.gz in models-bucket, encrypted with a KMS key
    statements = statements_of_role(main, _sagemaker_role(main))

    # Then the role reads that one object outside the stack's buckets
    outside = [r for r in _sagemaker_grants(main, "s3:")["s3:GetObject"] if ".Arn>" not in r]
    assert outside == ["arn:<AWS::Partition>:s3:::models-bucket/minilm/model.tar.gz"]
    # And may decrypt with that key only through S3, to read it
    (kms,) = [s for s in statements if "kms:Decrypt" in as_list(s["Action"])]
    assert kms["Action"] == "kms:Decrypt"
    assert kms["Resource"] == "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert render(kms["Condition"]["StringEquals"]["kms:ViaService"]) == "s3.<AWS::Region>.amazonaws.com"


def test_image_pulls_are_held_to_this_account_and_the_configured_ones(synth_all: list[Synthesized]) -> None:
    main, created = synth_all
    # Given the ECR grants of a stack whose pipeline names an image account, and of one that names none
    pulls = "ecr:BatchGetImage"
    # Then pulls reach the repositories of this account and of 763104351884 only, in this region
    repo = "arn:<AWS::Partition>:ecr:<AWS::Region>:{}:repository/*"
    assert _sagemaker_grants(main, "ecr:")[pulls] == [
        repo.format("<AWS::AccountId>"),
        repo.format("763104351884"),
    ]
    assert _sagemaker_grants(created, "ecr:")[pulls] == [repo.format("<AWS::AccountId>")]
    # And a stack without model artifacts grants no S3 read outside its buckets, and no key
    assert all(".Arn>" in r for r in _sagemaker_grants(created, "s3:")["s3:GetObject"])
    assert "kms:Decrypt" not in _sagemaker_grants(created, "kms:")


def test_functions_have_no_managed_policies(main: Synthesized) -> None:
    # Given the function roles
    for name in FUNCTIONS:
        role = main.resources[role_id(main, name)]["Properties"]
        # Then none carries a managed policy (AWSLambdaBasicExecutionRole would allow every log group)
        assert "ManagedPolicyArns" not in role, name
        # And each writes logs only to its own log group
        (log_statement,) = [s for s in statements(main, name) if "logs:PutLogEvents" in as_list(s["Action"])]
        assert render(log_statement["Resource"]).endswith(".Arn>"), name
