"""Provisioning the search side: created once, unchanged on re-runs, updated in place on changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.search.connectors import ConnectorTarget, connector_body
from osbatch.search.provision import OnnxArtifact, ProvisionError, provision_search
from osbatch.search_config import ModelSpec
from tests.unit.fake_ml_commons import FakeSearchClient
from tests.unit.helpers import pipeline_dict

LOCAL = ConnectorTarget(model_server_url="http://127.0.0.1:8601")
EMBEDDER = {"name": "embedder", "task": "text_embedding", "remote": {"sagemaker": {"endpoint": "minilm"}}}
PIPELINE = {
    "name": "embed",
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


def config(
    models: list[dict[str, Any]] | None = None, pipelines: list[dict[str, Any]] | None = None
) -> PipelineConfig:
    return parse_pipeline(
        pipeline_dict(models=models or [EMBEDDER], search_pipelines=pipelines or [PIPELINE])
    )


def onnx_source(sha: str = "a" * 64) -> Any:
    return lambda _model: OnnxArtifact(url="file:///models/minilm.zip", sha256=sha, size=10)


def actions(result: Any) -> dict[str, str]:
    return {f"{change.kind} {change.name}": change.action for change in result.changes}


def test_first_run_creates_everything_and_the_pipeline_names_the_registered_model() -> None:
    # Given an empty cluster
    client = FakeSearchClient()
    # When the config is provisioned
    result = provision_search(client, config(), target=LOCAL)
    # Then the index, the model (deployed, through a connector to the model server) and both pipelines exist
    assert actions(result) == {
        "index msmarco": "created",
        "model embedder": "created",
        "search pipeline embed": "created",
        "search pipeline msmarco-hybrid": "created",
    }
    model_id = result.model_ids["embedder"]
    model = client.transport.models[model_id]
    assert model["model_state"] == "DEPLOYED"
    assert (
        client.transport.connectors[model["connector_id"]]["actions"][0]["url"]
        == "http://127.0.0.1:8601/embed"
    )
    processor = client.transport.pipelines["embed"]["response_processors"][0]["ml_inference"]
    assert processor["model_id"] == model_id


def test_a_rerun_sends_no_write() -> None:
    # Given a provisioned cluster
    client = FakeSearchClient()
    provision_search(client, config(), target=LOCAL)
    client.transport.calls.clear()
    # When the same config is provisioned again
    result = provision_search(client, config(), target=LOCAL)
    # Then everything is unchanged and nothing was written
    assert set(actions(result).values()) == {"unchanged"}
    assert not result.changed
    assert client.transport.writes() == []


def test_a_changed_connector_updates_the_model_in_place() -> None:
    # Given a provisioned model
    client = FakeSearchClient()
    first = provision_search(client, config(), target=LOCAL)
    # When the model server moves
    moved = ConnectorTarget(model_server_url="http://127.0.0.1:9999")
    second = provision_search(client, config(), target=moved)
    # Then the same model (same id) was updated and its connector calls the new address; the pipeline stays
    assert second.model_ids == first.model_ids
    assert actions(second)["model embedder"] == "updated"
    assert actions(second)["search pipeline embed"] == "unchanged"
    model = client.transport.models[first.model_ids["embedder"]]
    assert model["model_state"] == "DEPLOYED"
    assert client.transport.connectors[model["connector_id"]]["actions"][0]["url"].startswith(
        "http://127.0.0.1:9999"
    )


def test_a_model_undeployed_since_is_deployed_again() -> None:
    client = FakeSearchClient()
    result = provision_search(client, config(), target=LOCAL)
    client.transport.models[result.model_ids["embedder"]]["model_state"] = "UNDEPLOYED"  # e.g. a node restart
    assert actions(provision_search(client, config(), target=LOCAL))["model embedder"] == "deployed"


def test_a_changed_search_pipeline_is_rewritten() -> None:
    client = FakeSearchClient()
    provision_search(client, config(), target=LOCAL)
    changed = {**PIPELINE, "description": "now described"}
    result = provision_search(client, config(pipelines=[changed]), target=LOCAL)
    assert actions(result)["search pipeline embed"] == "updated"
    assert client.transport.pipelines["embed"]["description"] == "now described"


def test_an_onnx_model_is_registered_from_its_artifact_and_replaced_when_it_changes() -> None:
    # Given an ONNX model
    onnx = {"name": "onnx", "task": "text_embedding", "onnx": {}}
    client = FakeSearchClient()
    first = provision_search(client, config(models=[EMBEDDER, onnx]), target=LOCAL, onnx=onnx_source())
    registered = client.transport.models[first.model_ids["onnx"]]
    assert (registered["url"], registered["model_content_hash_value"]) == (
        "file:///models/minilm.zip",
        "a" * 64,
    )
    # When its artifact changes
    second = provision_search(
        client, config(models=[EMBEDDER, onnx]), target=LOCAL, onnx=onnx_source("b" * 64)
    )
    # Then the old model is gone and a new one serves
    assert actions(second)["model onnx"] == "replaced"
    assert first.model_ids["onnx"] not in client.transport.models
    assert client.transport.models[second.model_ids["onnx"]]["model_state"] == "DEPLOYED"


def test_an_onnx_model_without_a_local_artifact_is_refused_before_anything_is_registered() -> None:
    client = FakeSearchClient()
    onnx = {"name": "onnx", "task": "text_embedding", "onnx": {}}
    with pytest.raises(ProvisionError, match="ONNX models run inside ML Commons on the local node only"):
        provision_search(client, config(models=[onnx, EMBEDDER]), target=LOCAL, onnx=None)
    assert client.transport.models == {}


def test_aws_connectors_sign_as_the_role_and_carry_no_keys() -> None:
    # Given a SageMaker embedding model and a Bedrock LLM, on AWS
    target = ConnectorTarget(role_arn="arn:aws:iam::123456789012:role/search", region="eu-west-1")
    sagemaker = connector_body(ModelSpec.model_validate(EMBEDDER), target)
    bedrock = connector_body(
        ModelSpec.model_validate(
            {"name": "llm", "task": "generate", "remote": {"bedrock": {"model": "anthropic.x"}}}
        ),
        target,
    )
    # Then both are SigV4 connectors with the role as their only credential
    for body, service in ((sagemaker, "sagemaker"), (bedrock, "bedrock")):
        assert body["protocol"] == "aws_sigv4"
        assert body["credential"] == {"roleArn": "arn:aws:iam::123456789012:role/search"}
        assert body["parameters"] == {"region": "eu-west-1", "service_name": service}
    assert sagemaker["actions"][0]["url"] == (
        "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/minilm/invocations"
    )
    assert (
        bedrock["actions"][0]["url"]
        == "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.x/invoke"
    )


def test_a_titan_query_model_asks_for_its_size_on_aws_and_locally() -> None:
    # Given a Titan embedding model that must answer in 512 dimensions, the batch job's size
    titan = ModelSpec.model_validate(
        {
            "name": "titan",
            "task": "text_embedding",
            "remote": {"bedrock": {"model": "amazon.titan-embed-text-v2:0", "dimensions": 512}},
        }
    )
    # When its connector is built for AWS and for the local model server
    aws = connector_body(
        titan, ConnectorTarget(role_arn="arn:aws:iam::123456789012:role/s", region="eu-west-1")
    )
    local = connector_body(titan, LOCAL)
    # Then InvokeModel's body names the size, and the local model server is asked for the same
    request = json.loads(aws["actions"][0]["request_body"].replace("${parameters.inputText}", "q"))
    assert request == {"inputText": "q", "dimensions": 512}
    assert local["actions"][0]["url"] == "http://127.0.0.1:8601/embed?dimensions=512"


def test_the_hybrid_pipeline_carries_the_configured_normalization() -> None:
    client = FakeSearchClient()
    data = pipeline_dict(search={"hybrid": {"normalization": "l2", "weights": [0.5, 0.5]}})
    provision_search(client, parse_pipeline(data), target=LOCAL)
    processor = client.transport.pipelines["msmarco-hybrid"]["phase_results_processors"][0]
    assert processor["normalization-processor"]["normalization"] == {"technique": "l2"}
    assert processor["normalization-processor"]["combination"]["parameters"] == {"weights": [0.5, 0.5]}
