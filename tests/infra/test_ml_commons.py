"""The ml-commons backend on AWS: the custom resource provisions the batch model, its connector role runs
osbatch's transform jobs only, and the job functions reach exactly ML Commons' batch paths."""

from __future__ import annotations

import pytest

from infra.stack import LOCAL_OPENSEARCH_ENDPOINT, OsbatchStack
from osbatch.config import Backend
from tests.infra.helpers import (
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
BATCH = {
    "name": "batch",
    "source": {"prefix": "input/batch/"},
    "inference": {
        "backend": "ml-commons",
        "sagemaker": None,
        "ml_commons": {"model": "batch-minilm", "sagemaker": {"ModelName": "minilm-embedder"}},
    },
    "models": [],
    "search_pipelines": [],
    "search": {"query_model": None},
}


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
    assert resources_for(batch, "start-job", "es:ESHttpPost") == [
        f"{DOMAIN}/_plugins/_ml/models/*",
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
