"""knn queries are embedded by the model that embedded the documents, in the index's size.

The example pipelines' real-time twins (Bedrock InvokeModel, OpenAI embeddings) are called with their own
model and `dimensions`, here answered by the local emulators; pipelines without one fall back to their
query_model on the node, or say what to configure.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import openai
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from cli.search import SearchSetupError, query_embedder, run_search
from local.emulators.bedrock_runtime import with_bedrock_runtime
from local.emulators.openai_server import BatchStore, serve
from osbatch.config import PipelineConfig, load_pipeline
from osbatch.search.queries import Mode
from tests.unit.fake_ml_commons import FakeMlTransport

EXAMPLES = Path(__file__).resolve().parents[2] / "pipelines" / "examples"
KEY = "sk-test-query"


class HashEmbedder:
    """A stand-in for the local MiniLM: a fixed unit vector per text, 384 long."""

    dimension = 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            row = np.random.default_rng(seed).standard_normal(self.dimension)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def bedrock_emulator() -> Iterator[str]:
    """The AWS emulator's InvokeModel route, in front of an app that answers everything else 404."""
    app = with_bedrock_runtime(Response("not here", status=404), HashEmbedder)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def openai_emulator() -> Iterator[str]:
    server = serve(free_port(), BatchStore(HashEmbedder), lambda: KEY)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def runtime_client(endpoint: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_titan_example_embeds_its_query_with_invoke_model_in_1024_dimensions(
    bedrock_emulator: str,
) -> None:
    # Given the Titan example (documents embedded by amazon.titan-embed-text-v2:0 at 1024 dimensions)
    config = load_pipeline(EXAMPLES / "bedrock-titan.yaml")
    sent: list[dict[str, Any]] = []
    runtime = runtime_client(bedrock_emulator)
    runtime.meta.events.register(
        "before-send.bedrock-runtime.InvokeModel",
        lambda request, **_: sent.append({"url": request.url, "body": json.loads(request.body)}),
    )
    # When its query embedder embeds a query
    embed = query_embedder(config, lambda service: {"bedrock-runtime": runtime}[service])
    assert embed is not None
    vector = embed("decompress a gzip file")
    # Then InvokeModel ran the same model with the same body as the batch job, and the vector fits the index
    assert sent[0]["url"].endswith("/model/amazon.titan-embed-text-v2%3A0/invoke")
    assert sent[0]["body"] == {"inputText": "decompress a gzip file", "dimensions": 1024, "normalize": True}
    assert len(vector) == 1024
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_invoke_model_refuses_a_size_titan_does_not_have(bedrock_emulator: str) -> None:
    # Given the emulator's InvokeModel / When a Titan body asks for 300 dimensions
    with pytest.raises(ClientError) as refused:
        runtime_client(bedrock_emulator).invoke_model(
            modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "x", "dimensions": 300})
        )
    # Then it is Bedrock's ValidationException, as the service answers a body the model does not take
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "dimensions" in refused.value.response["Error"]["Message"]


@mock_aws
def test_the_openai_example_embeds_its_query_with_the_embeddings_api_in_512_dimensions(
    openai_emulator: str,
) -> None:
    # Given the OpenAI example (text-embedding-3-small at 512 dimensions) pointed at the emulator, and its key
    example = load_pipeline(EXAMPLES / "openai-embeddings.yaml")
    settings = example.inference.openai
    assert settings is not None
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name=settings.api_key_secret, SecretString=KEY)
    inference = example.inference.model_copy(
        update={"openai": settings.model_copy(update={"api_base": openai_emulator})}
    )
    config = example.model_copy(update={"inference": inference})
    # When its query embedder embeds a query
    embed = query_embedder(config, lambda service: {"secretsmanager": secrets}[service])
    assert embed is not None
    # Then the vector has the index's 512 dimensions
    assert len(embed("decompress a gzip file")) == 512


def test_the_embeddings_api_answers_in_the_models_size_as_the_sdk_reads_it(openai_emulator: str) -> None:
    # Given the official SDK pointed at the emulator
    client = openai.OpenAI(base_url=openai_emulator, api_key=KEY)
    # When it asks for embeddings with and without dimensions
    sized = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=512)
    full = client.embeddings.create(model="text-embedding-3-large", input="a")
    # Then each has the size asked for, or the model's full size
    assert [len(item.embedding) for item in sized.data] == [512, 512]
    assert len(full.data[0].embedding) == 3072
    # And a model that takes no dimensions refuses them, as the API does
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-ada-002", input="a", dimensions=512)


def sagemaker_pipeline(query_model: str | None) -> PipelineConfig:
    config = load_pipeline(Path(__file__).resolve().parents[2] / "pipelines" / "python-docs.yaml")
    return config.model_copy(update={"search": config.search.model_copy(update={"query_model": query_model})})


def no_aws_client(service: str) -> Any:
    raise AssertionError(f"no {service} client was needed")


def test_the_local_model_embeds_only_where_it_is_the_batch_model() -> None:
    # Given a SageMaker pipeline, and the local model as the local runtime offers it
    def local_model(text: str) -> list[float]:
        return [0.0] * 384

    config = sagemaker_pipeline("python-docs-minilm")
    # When the query embedder is chosen locally and on AWS
    # Then the local model serves locally (it ran the local transform jobs) and nothing client-side on AWS
    assert query_embedder(config, no_aws_client, local_model=local_model) is local_model
    assert query_embedder(config, no_aws_client) is None
    # And for a Bedrock pipeline the local model is never used: the emulator's InvokeModel is the model
    titan = load_pipeline(EXAMPLES / "bedrock-titan.yaml")
    assert query_embedder(titan, lambda service: object(), local_model=local_model) is not local_model


class NoSearch:
    def search(self, **_: Any) -> Any:
        raise AssertionError("nothing should be searched")


def test_knn_without_a_query_embedder_or_query_model_says_what_to_configure() -> None:
    # Given a SageMaker pipeline on AWS with no query_model / When it is searched in knn mode
    with pytest.raises(SearchSetupError) as refused:
        run_search(NoSearch(), sagemaker_pipeline(None), "gzip", mode=Mode.KNN, query_vector=None)
    # Then the error names the setting that would make it work
    assert "search.query_model" in str(refused.value)
    assert "osbatch setup --pipeline python-docs" in str(refused.value)


class RecordingSearch:
    """A node with the query model registered, recording the search it is sent."""

    def __init__(self) -> None:
        self.transport = FakeMlTransport()
        self.transport.models["m-1"] = {"name": "python-docs-minilm", "model_state": "DEPLOYED"}
        self.bodies: list[dict[str, Any]] = []

    def search(self, *, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.bodies.append(body)
        return {"hits": {"hits": []}}


def test_knn_without_a_query_embedder_has_the_node_embed_with_the_query_model() -> None:
    # Given a SageMaker pipeline on AWS whose query_model is registered on the node
    client = RecordingSearch()
    # When it is searched in knn mode with no client-side embedder
    run_search(client, sagemaker_pipeline("python-docs-minilm"), "gzip", k=3, mode=Mode.KNN)
    # Then the node embeds the query with that model: a neural clause naming its id, and no vector
    (body,) = client.bodies
    assert body["query"] == {"neural": {"chunk_embedding": {"query_text": "gzip", "model_id": "m-1", "k": 3}}}
