"""The ml-commons backend on AWS: the custom resource provisions the batch model, its connector role runs
osbatch's transform jobs only, and the job functions reach exactly ML Commons' batch paths."""

from __future__ import annotations

import pytest

from infra.stack import LOCAL_OPENSEARCH_ENDPOINT, OsbatchStack
from osbatch.config import Backend
from tests.infra.helpers import (
    BATCH,
    Synthesized,
    as_list,
    connector_role,
    function_ids,
    new_app,
    pipeline,
    render,
    resources_for,
    search_resources,
    statements_of_role,
)

DOMAIN = "arn:<AWS::Partition>:es:us-east-1:<AWS::AccountId>:domain/my-domain"


@pytest.fixture(scope="module")
def batch() -> Synthesized:
    # Given a stack whose one pipeline runs on the ml-commons backend, with no other search side
    stack = OsbatchStack(new_app(), "osbatch", pipelines=[pipeline(**BATCH)])
    return Synthesized.of(stack)


def test_the_batch_model_is_provisioned_by_the_custom_resource(batch: Synthesized) -> None:
    (properties,) = search_resources(batch).values()
    config = properties.pipeline()
    assert config.inference.backend is Backend.ML_COMMONS and not config.models
    assert properties.connector_role_arn  # the batch connector signs as the connector role


def test_the_connector_role_runs_only_osbatch_transform_jobs(batch: Synthesized) -> None:
    role = connector_role(batch)
    granted = {
        action: [render(r) for r in as_list(s["Resource"])]
        for s in statements_of_role(batch, role)
        for action in as_list(s["Action"])
    }
    jobs = ["arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:transform-job/osb-*"]
    assert granted == {
        "sagemaker:CreateTransformJob": jobs,
        "sagemaker:DescribeTransformJob": jobs,
        "sagemaker:StopTransformJob": jobs,
    }


def test_the_job_functions_reach_the_batch_paths_and_the_cluster(batch: Synthesized) -> None:
    # Then start-job submits, poll-job reads and cancels, fail-job cancels, each on the pipeline's domain
    # (the model search and _batch_predict only: not _register, _deploy, _undeploy or _predict on any model)
    assert sorted(resources_for(batch, "start-job", "es:ESHttpPost")) == [
        f"{DOMAIN}/_plugins/_ml/models/*/_batch_predict",
        f"{DOMAIN}/_plugins/_ml/models/_search",
        f"{DOMAIN}/_plugins/_ml/tasks/_search",
    ]
    for name in ("poll-job", "fail-job"):
        ml_paths = {
            action: [r for r in resources_for(batch, name, action) if "/_plugins/" in r]
            for action in ("es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete")
        }
        assert ml_paths == {
            "es:ESHttpGet": [f"{DOMAIN}/_plugins/_ml/tasks/*"],
            "es:ESHttpPost": [f"{DOMAIN}/_plugins/_ml/tasks/*/_cancel"],
            "es:ESHttpPut": [],
            "es:ESHttpDelete": [],
        }
    # And start-job keeps its ledger under the job's output prefix
    (ledger,) = resources_for(batch, "start-job", "s3:PutObject")
    assert ledger.endswith("/jobs/*/output/*/ml-commons-task.json")  # one per remote job's output


def test_the_batch_callers_get_the_overriding_endpoint() -> None:
    # Given the stack built with an endpoint overriding the pipelines' own (the local node, a created domain)
    app = new_app()
    app.node.set_context(LOCAL_OPENSEARCH_ENDPOINT, "http://127.0.0.1:9200")
    stack = OsbatchStack(
        app, "osbatch", pipelines=[pipeline(**BATCH)], opensearch_endpoint="http://127.0.0.1:9200"
    )
    synth = Synthesized.of(stack)
    # Then start-job, poll-job and fail-job call ML Commons there
    ids = function_ids(synth)
    for name in ("start-job", "poll-job", "fail-job"):
        variables = synth.resources[ids[name]]["Properties"]["Environment"]["Variables"]
        assert variables["OPENSEARCH_ENDPOINT"] == "http://127.0.0.1:9200"


def test_a_sagemaker_stack_grants_no_batch_path() -> None:
    plain = pipeline(models=[], search_pipelines=[], search={"query_model": None})
    stack = OsbatchStack(new_app(), "osbatch", pipelines=[plain])
    synth = Synthesized.of(stack)
    assert not [r for r in resources_for(synth, "start-job", "es:ESHttpPost") if "_plugins/_ml" in r]


def test_a_created_domain_trusts_start_job_with_the_same_two_model_paths() -> None:
    # Given the ml-commons pipeline on a created domain, whose access policy names each grant
    created = pipeline(**BATCH, sink={"opensearch": {"endpoint": None, "create_domain": True}})
    stack = OsbatchStack(new_app(), "osbatch", pipelines=[created])
    synth = Synthesized.of(stack)
    (domain,) = synth.of_type("AWS::OpenSearchService::Domain").values()
    start_job = synth.resources[function_ids(synth)["start-job"]]["Properties"]["Role"]["Fn::GetAtt"][0]

    # When the statements naming start-job's role are read
    paths = [
        render(resource).rsplit("/_plugins/", 1)[-1]
        for statement in domain["Properties"]["AccessPolicies"]["Statement"]
        if start_job in render(statement["Principal"]["AWS"]) and "_plugins" in render(statement["Resource"])
        for resource in as_list(statement["Resource"])
    ]

    # Then the domain lets it search models and batch-predict, and no other model call
    assert sorted(paths) == ["_ml/models/*/_batch_predict", "_ml/models/_search", "_ml/tasks/_search"]
