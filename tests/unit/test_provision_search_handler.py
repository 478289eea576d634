"""The provisioning custom resource handler: Create, Update provision idempotently; Delete does nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from osbatch.handlers import provision_search
from osbatch.search.custom_resource import RESOURCE_TYPE
from tests.unit.fake_ml_commons import FakeSearchClient
from tests.unit.helpers import FakeContext, pipeline_dict

ENDPOINT = "https://search-my-domain-abc123.us-east-1.es.amazonaws.com"
ROLE = "arn:aws:iam::123456789012:role/osbatch-connectors"
EMBEDDER = {"name": "embedder", "task": "text_embedding", "remote": {"sagemaker": {"endpoint": "minilm"}}}
RERANK = {
    "name": "rerank",
    "response_processors": [
        {
            "ml_inference": {
                "model": "embedder",
                "input_map": [{"input": "chunk"}],
                "output_map": [{"v": "data"}],
            }
        }
    ],
}


def properties(endpoint_name: str = "minilm") -> dict[str, str]:
    embedder = {**EMBEDDER, "remote": {"sagemaker": {"endpoint": endpoint_name}}}
    config = pipeline_dict(models=[embedder], search_pipelines=[RERANK])
    config["sink"]["opensearch"] = {"endpoint": ENDPOINT}
    return {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:framework-onEvent",
        "Config": json.dumps(config),
        "Endpoint": ENDPOINT,
        "ConnectorRoleArn": ROLE,
        "Region": "us-east-1",
        "CodeVersion": "abc",
    }


def cfn_event(request_type: str, props: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A CloudFormation custom resource request as the Provider framework passes it on."""
    return {
        "RequestType": request_type,
        "ServiceToken": props["ServiceToken"],
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/osbatch/1",
        "RequestId": "r-1",
        "LogicalResourceId": "SearchProvisioningPythonDocs",
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": props,
        **extra,
    }


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    client = FakeSearchClient()
    asked: dict[str, Any] = {"client": client, "endpoints": []}

    def client_for(endpoint: str) -> FakeSearchClient:
        asked["endpoints"].append(endpoint)
        return client

    monkeypatch.setattr(provision_search, "opensearch_at", client_for)
    return asked


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return provision_search.handler(event, FakeContext())  # type: ignore[arg-type]


def test_create_provisions_the_config_on_the_endpoint_and_returns_model_ids(cluster: dict[str, Any]) -> None:
    # Given an empty cluster and a Create request
    client: FakeSearchClient = cluster["client"]

    # When the handler runs
    response = invoke(cfn_event("Create", properties()))

    # Then it talked to the endpoint of the properties and created index, model and both search pipelines
    assert cluster["endpoints"] == [ENDPOINT]
    assert "msmarco" in client.indices.existing
    assert set(client.transport.pipelines) == {"rerank", "msmarco-hybrid"}
    # And the connector signs as the connector role, calling SageMaker in the given region
    (connector,) = client.transport.connectors.values()
    assert connector["credential"] == {"roleArn": ROLE}
    assert connector["actions"][0]["url"].startswith("https://runtime.sagemaker.us-east-1.amazonaws.com/")
    # And the response names a stable physical id and the model id as Data
    (model_id,) = client.transport.models
    assert response == {"PhysicalResourceId": "osbatch-search-msmarco", "Data": {"embedder": model_id}}
    (step,) = client.transport.pipelines["rerank"]["response_processors"]
    assert step["ml_inference"]["model_id"] == model_id


def test_update_with_the_same_config_changes_nothing(cluster: dict[str, Any]) -> None:
    # Given a provisioned cluster
    client: FakeSearchClient = cluster["client"]
    created = invoke(cfn_event("Create", properties()))
    writes = len(client.transport.writes())

    # When an Update arrives with the same config (a code-only change, say)
    updated = invoke(
        cfn_event(
            "Update",
            properties(),
            PhysicalResourceId=created["PhysicalResourceId"],
            OldResourceProperties=properties(),
        )
    )

    # Then nothing is written and the response is the same
    assert client.transport.writes()[writes:] == []
    assert updated == created


def test_update_with_a_changed_config_updates_the_model_in_place(cluster: dict[str, Any]) -> None:
    # Given a provisioned cluster
    client: FakeSearchClient = cluster["client"]
    created = invoke(cfn_event("Create", properties()))

    # When the config's endpoint name changes
    updated = invoke(
        cfn_event(
            "Update",
            properties("minilm-v2"),
            PhysicalResourceId=created["PhysicalResourceId"],
            OldResourceProperties=properties(),
        )
    )

    # Then the same model (same id) now calls the new endpoint, and the physical id is unchanged
    assert updated == created
    (connector,) = client.transport.connectors.values()
    assert "/endpoints/minilm-v2/invocations" in connector["actions"][0]["url"]
    assert len(client.transport.models) == 1


def test_delete_leaves_the_cluster_untouched(cluster: dict[str, Any]) -> None:
    # Given a provisioned cluster
    client: FakeSearchClient = cluster["client"]
    created = invoke(cfn_event("Create", properties()))
    calls = len(client.transport.calls)

    # When a Delete arrives, even one whose properties this code would no longer accept
    response = invoke(
        cfn_event(
            "Delete", {"ServiceToken": "x", "Config": "{}"}, PhysicalResourceId=created["PhysicalResourceId"]
        )
    )

    # Then no request reaches the cluster (models and pipelines stay for the queries that use them)
    assert client.transport.calls[calls:] == []
    assert cluster["endpoints"] == [ENDPOINT]
    assert set(client.transport.pipelines) == {"rerank", "msmarco-hybrid"}
    # And the framework gets the same physical id back, as it requires on Delete
    assert response == {"PhysicalResourceId": created["PhysicalResourceId"], "Data": {}}


def test_a_request_without_the_config_fails_before_any_call(cluster: dict[str, Any]) -> None:
    # Given a Create request missing the Config property
    props = {k: v for k, v in properties().items() if k != "Config"}

    # When the handler runs, then it fails naming the property, and nothing was called
    with pytest.raises(ValidationError, match="Config"):
        invoke(cfn_event("Create", props))
    assert cluster["endpoints"] == []
