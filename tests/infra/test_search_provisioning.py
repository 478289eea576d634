"""The search side on AWS: a custom resource per search pipeline, a least-privilege connector role, and a
provisioning function that may call exactly what provisioning calls."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.search_provisioning import SearchProvisioning
from infra.stack import LOCAL_OPENSEARCH_ENDPOINT, OsbatchStack
from osbatch.config import ConfigError, PipelineConfig
from osbatch.search.connectors import ConnectorTarget
from osbatch.search.custom_resource import RESOURCE_TYPE, SearchResourceProperties
from osbatch.search.provision import provision_search
from tests.infra.helpers import (
    CONTEXT,
    SECOND,
    Synthesized,
    as_list,
    connector_role,
    example_data,
    function_ids,
    new_app,
    pipeline,
    render,
    search_resources,
    statements,
    statements_of_role,
)
from tests.unit.fake_ml_commons import FakeSearchClient

MAIN_DOMAINS = {
    "python-docs": "arn:<AWS::Partition>:es:us-east-1:<AWS::AccountId>:domain/my-domain",
    "docs": "arn:<AWS::Partition>:es:eu-west-1:<AWS::AccountId>:domain/other-domain",
}
BEDROCK_MODEL = {
    "name": "python-docs-answerer",
    "task": "generate",
    "remote": {"bedrock": {"model": "anthropic.claude-3-haiku-20240307-v1:0"}},
}


@pytest.fixture(scope="module")
def changed() -> Synthesized:
    # Given the example pipeline with one more model (a Bedrock one) and other hybrid weights
    data = example_data()
    data["models"].append(BEDROCK_MODEL)
    data["search"]["hybrid"]["weights"] = [0.5, 0.5]
    stack = OsbatchStack(new_app(), "osbatch", pipelines=[pipeline(**data)])
    return Synthesized.of(stack)


def test_each_search_pipeline_has_a_resource_carrying_its_validated_config(main: Synthesized) -> None:
    # Given the stack with two search pipelines on two domains
    resources = search_resources(main)

    # Then each has one resource whose Config is that pipeline's whole config, search side included
    assert set(resources) == {"python-docs", "docs"}
    assert resources["python-docs"].pipeline() == pipeline()
    assert resources["docs"].pipeline() == pipeline(**SECOND)
    # And it provisions the pipeline's own endpoint, signing connectors as the connector role
    assert resources["docs"].endpoint == "https://search-other-domain-xyz789.eu-west-1.es.amazonaws.com"
    role = {"Fn::GetAtt": [connector_role(main), "Arn"]}
    for logical_id, resource in main.of_type(RESOURCE_TYPE).items():
        assert resource["Properties"]["ConnectorRoleArn"] == role, logical_id
        assert resource["Properties"]["Region"] == {"Ref": "AWS::Region"}, logical_id
        # And it waits for the connector role's policy, so a model is never deployed before it can be called
        assert any(
            dep.startswith("SearchProvisioningConnectorRoleDefaultPolicy") for dep in resource["DependsOn"]
        )


def test_a_created_domain_is_provisioned_at_its_endpoint(created: Synthesized) -> None:
    # Given the stack that creates its domain
    (domain,) = created.of_type("AWS::OpenSearchService::Domain")
    (resource,) = created.of_type(RESOURCE_TYPE).values()

    # Then the resource provisions the created domain's endpoint
    assert render(resource["Properties"]["Endpoint"]) == f"https://<{domain}.DomainEndpoint>"


def test_a_changed_config_changes_the_properties_in_place(main: Synthesized, changed: Synthesized) -> None:
    # Given the same pipeline before and after its config changed
    (before,) = [r for r in main.of_type(RESOURCE_TYPE).items() if "pythondocs" in r[0]]
    (after,) = changed.of_type(RESOURCE_TYPE).items()

    # Then the resource keeps its logical id (CloudFormation updates it, never replaces it) ...
    assert before[0] == after[0]
    # ... and its Config changed with exactly the config (so CloudFormation sends an Update)
    assert before[1]["Properties"]["Config"] != after[1]["Properties"]["Config"]
    config = SearchResourceProperties.model_validate(
        {key: render(value) for key, value in after[1]["Properties"].items()}
    ).pipeline()
    assert config.search.hybrid.weights == (0.5, 0.5)
    assert [m.name for m in config.models][-1] == "python-docs-answerer"
    # And the rest of the properties are the same
    assert {k: v for k, v in before[1]["Properties"].items() if k != "Config"} == {
        k: v for k, v in after[1]["Properties"].items() if k != "Config"
    }


def test_connector_role_is_assumed_only_by_opensearch_for_these_domains(main: Synthesized) -> None:
    # Given the connector role
    role = main.resources[connector_role(main)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    # Then only OpenSearch Service can assume it, for this account and the pipelines' domains
    assert trust["Principal"] == {"Service": "opensearchservice.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert sorted(render(arn) for arn in trust["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
        MAIN_DOMAINS.values()
    )
    assert "ManagedPolicyArns" not in role


def test_connector_role_invokes_exactly_the_configured_endpoints(main: Synthesized) -> None:
    # Given the connector role's permissions
    granted = statements_of_role(main, connector_role(main))

    # Then it may invoke the two configured SageMaker endpoints, in the stack's region, and nothing else
    (statement,) = granted
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert sorted(render(r) for r in as_list(statement["Resource"])) == [
        f"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint/{name}"
        for name in ("minilm-cross-encoder", "minilm-embedder")
    ]


def test_connector_role_invokes_exactly_the_configured_bedrock_model(changed: Synthesized) -> None:
    # Given a config with a Bedrock model besides the SageMaker endpoints
    by_action = {
        action: sorted(render(r) for r in as_list(s["Resource"]))
        for s in statements_of_role(changed, connector_role(changed))
        for action in as_list(s["Action"])
    }

    # Then the role may invoke that foundation model (ARNs of foundation models carry no account)
    assert by_action["bedrock:InvokeModel"] == [
        "arn:<AWS::Partition>:bedrock:<AWS::Region>::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    ]
    assert set(by_action) == {"sagemaker:InvokeEndpoint", "bedrock:InvokeModel"}


def _granted_http(synth: Synthesized) -> list[tuple[str, str]]:
    return [
        (action, render(resource))
        for s in statements(synth, "provision-search")
        for action in as_list(s["Action"])
        if action.startswith("es:")
        for resource in as_list(s["Resource"])
    ]


def test_provisioning_may_call_only_the_ml_pipeline_and_index_paths(main: Synthesized) -> None:
    # Given the provisioning function's ESHttp grants
    granted = _granted_http(main)

    # Then each is under _plugins/_ml, one of the pipeline's search pipelines, or its index
    domain = MAIN_DOMAINS["python-docs"]
    mine = sorted(
        (action, resource.removeprefix(domain)) for action, resource in granted if domain in resource
    )
    assert mine == sorted(
        [
            ("es:ESHttpPut", "/python-docs"),
            ("es:ESHttpGet", "/python-docs/_mapping"),
            # each ML Commons call by its path: POST never reaches models/<id>/_predict or _batch_predict
            ("es:ESHttpPost", "/_plugins/_ml/connectors/_create"),
            ("es:ESHttpPut", "/_plugins/_ml/connectors/*"),
            ("es:ESHttpPost", "/_plugins/_ml/models/_search"),
            ("es:ESHttpPost", "/_plugins/_ml/models/_register"),
            ("es:ESHttpPost", "/_plugins/_ml/models/*/_deploy"),
            ("es:ESHttpPost", "/_plugins/_ml/models/*/_undeploy"),
            ("es:ESHttpPut", "/_plugins/_ml/models/*"),
            ("es:ESHttpGet", "/_plugins/_ml/tasks/*"),
            ("es:ESHttpGet", "/_search/pipeline/python-docs-rerank"),
            ("es:ESHttpPut", "/_search/pipeline/python-docs-rerank"),
            ("es:ESHttpGet", "/_search/pipeline/python-docs-hybrid"),
            ("es:ESHttpPut", "/_search/pipeline/python-docs-hybrid"),
        ]
    )
    # And no DELETE anywhere: provisioning never removes what queries use
    assert not [action for action, _ in granted if action == "es:ESHttpDelete"]


class RecordingIndices:
    """The index calls as the HTTP requests opensearch-py sends for them."""

    def __init__(self, client: FakeSearchClient) -> None:
        self._indices = client.indices
        self.calls: list[tuple[str, str]] = []

    def create(self, *, index: str, body: Any = None) -> Any:
        self.calls.append(("PUT", f"/{index}"))
        return self._indices.create(index=index, body=body)

    def get_mapping(self, *, index: str) -> Any:
        self.calls.append(("GET", f"/{index}/_mapping"))
        return self._indices.get_mapping(index=index)


def test_the_grants_cover_every_call_provisioning_makes(main: Synthesized) -> None:
    # Given every request a first provisioning and a re-run with a changed connector make
    config: PipelineConfig = pipeline()
    client = FakeSearchClient()
    indices = RecordingIndices(client)
    client.indices = indices  # type: ignore[assignment]
    target = ConnectorTarget(role_arn="arn:aws:iam::1:role/c", region="us-east-1")
    provision_search(client, config, target=target)
    provision_search(
        client, config, target=ConnectorTarget(role_arn="arn:aws:iam::1:role/d", region="us-east-1")
    )
    calls = set(client.transport.calls) | set(indices.calls)
    assert ("PUT", "/_plugins/_ml/connectors/id1") in calls  # the update path was exercised

    # Then each is allowed by a grant of the provisioning function on that pipeline's domain
    domain = MAIN_DOMAINS["python-docs"]
    granted = [
        (action, resource.removeprefix(domain))
        for action, resource in _granted_http(main)
        if domain in resource
    ]
    for method, path in sorted(calls):
        action = f"es:ESHttp{method.capitalize()}"
        assert any(a == action and fnmatch.fnmatchcase(path, pattern) for a, pattern in granted), (
            method,
            path,
        )


def test_no_provisioning_resource_with_the_local_context() -> None:
    # Given the context the local runtime synthesizes with (local/deploy.py)
    app = new_app()
    app.node.set_context(LOCAL_OPENSEARCH_ENDPOINT, "http://127.0.0.1:9200")
    assert CONTEXT.get(LOCAL_OPENSEARCH_ENDPOINT) is None  # the shared suite's stacks are the AWS ones

    # When the stack is built as app.py builds it there
    stack = OsbatchStack(app, "osbatch", pipelines=[pipeline()], opensearch_endpoint="http://127.0.0.1:9200")

    # Then there is no custom resource, provider or connector role (the demo runs `osbatch setup`)
    assert not [c for c in stack.node.find_all() if isinstance(c, SearchProvisioning)]
    template = Template.from_stack(stack).to_json()["Resources"]
    assert not [k for k, v in template.items() if v["Type"] == RESOURCE_TYPE or "SearchProvisioning" in k]


def test_pipelines_without_a_search_side_get_no_provisioning() -> None:
    # Given a pipeline with no models and no search pipelines
    data = example_data()
    data["models"], data["search_pipelines"], data["search"] = [], [], {"query_model": None}
    stack = OsbatchStack(new_app(), "plain", pipelines=[pipeline(**data)])

    # Then nothing is provisioned and no role is created for it
    (provisioning,) = [c for c in stack.node.find_all() if isinstance(c, SearchProvisioning)]
    assert provisioning.resources == {} and provisioning.connector_role is None


def test_a_model_only_the_local_node_runs_fails_synth_for_aws() -> None:
    # Given a pipeline whose model is ONNX (ML Commons runs it on the local node only)
    data = example_data()
    data["models"] = [{"name": "local-minilm", "task": "text_embedding", "onnx": {}}]
    data["search"] = {"query_model": "local-minilm"}
    data["search_pipelines"] = []

    # When the AWS stack is built, then synth stops with the pipeline and model named
    with pytest.raises(ConfigError, match=r"pipeline 'python-docs': models.0 \(local-minilm\): on AWS"):
        OsbatchStack(new_app(), "onnx", pipelines=[pipeline(**data)])


def test_provider_framework_role_has_no_managed_policy(main: Synthesized) -> None:
    # Given the Provider framework's role
    (role,) = [k for k in main.of_type("AWS::IAM::Role") if k.startswith("SearchProvisioningProviderRole")]

    # Then it carries no AWSLambdaBasicExecutionRole and may invoke only the provisioning function
    assert "ManagedPolicyArns" not in main.resources[role]["Properties"]
    function = function_ids(main)["provision-search"]
    invokes = [s for s in statements_of_role(main, role) if s["Action"] == "lambda:InvokeFunction"]
    assert [render(r) for s in invokes for r in as_list(s["Resource"])] == [
        f"<{function}.Arn>",
        f"<{function}.Arn>:*",
    ]


def test_provisioning_function_has_exactly_its_actions(main: Synthesized) -> None:
    # Given the provisioning function's role
    granted = {action for s in statements(main, "provision-search") for action in as_list(s["Action"])}

    # Then it logs, traces, passes the connector role and calls the domain over HTTP; nothing else
    assert granted == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "iam:PassRole",
        "es:ESHttpGet",
        "es:ESHttpPost",
        "es:ESHttpPut",
    }
