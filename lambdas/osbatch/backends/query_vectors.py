"""A query's vector from the model that embedded the documents, through that backend's real-time API.

A k-NN query only finds what it should if its vector comes from the same model, with the same output size,
as the indexed vectors. For the batch backends with a real-time twin this module calls it with the very
request body the batch job sends for one record:
- Bedrock: InvokeModel with the pipeline's model id and body (Titan Text Embeddings V2: `inputText`,
  `dimensions`, `normalize`; Cohere Embed: `texts`, with `input_type: search_query`, the type Cohere says
  queries take). API reference "InvokeModel",
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html; bodies and answers:
  "Amazon Titan Embeddings G1 - Text",
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html, and
  "Cohere Embed models", https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html.
- OpenAI: POST /v1/embeddings with the pipeline's model and `dimensions` ("Create embeddings",
  https://platform.openai.com/docs/api-reference/embeddings/create).
SageMaker batch transform and ML Commons batch jobs have no such twin: their pipelines name a query model
(`search.query_model`, possibly a SageMaker endpoint) that ML Commons runs, which the caller falls back to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from osbatch.backends.bedrock import model_input
from osbatch.backends.openai import request_body
from osbatch.backends.openai_http import OpenAIHttp
from osbatch.config import Backend, BedrockJobConfig, BedrockModelFamily, OpenAIJobConfig, PipelineConfig

QueryEmbedder = Callable[[str], list[float]]
# The AWS client for a service name ("bedrock-runtime", "secretsmanager"), built by the caller.
ClientFactory = Callable[[str], Any]

EMBEDDINGS_ENDPOINT = "/v1/embeddings"
EMBEDDING_FAMILIES = frozenset({BedrockModelFamily.TITAN_EMBED_V2, BedrockModelFamily.COHERE_EMBED})


def backend_query_embedder(config: PipelineConfig, client: ClientFactory) -> QueryEmbedder | None:
    """The backend's real-time embedding call for `config`'s model, or None where it has none."""
    inference = config.inference
    bedrock, openai = inference.bedrock, inference.openai
    if inference.backend is Backend.BEDROCK and bedrock is not None and bedrock.family in EMBEDDING_FAMILIES:
        return _bedrock(bedrock, client("bedrock-runtime"))
    if inference.backend is Backend.OPENAI and openai is not None and openai.endpoint == EMBEDDINGS_ENDPOINT:
        return _openai(openai, OpenAIHttp(openai.api_base, openai.api_key_secret, client("secretsmanager")))
    return None


def _openai(settings: OpenAIJobConfig, http: OpenAIHttp) -> QueryEmbedder:
    def embed(text: str) -> list[float]:
        # api_base ends in /v1, as the batch backend's calls assume
        answer = http.json("POST", EMBEDDINGS_ENDPOINT.removeprefix("/v1"), request_body(settings, text))
        return [float(x) for x in answer["data"][0]["embedding"]]

    return embed


def _bedrock(settings: BedrockJobConfig, runtime: Any) -> QueryEmbedder:
    def embed(text: str) -> list[float]:
        body = model_input(settings, text)
        if settings.family is BedrockModelFamily.COHERE_EMBED:
            body["input_type"] = "search_query"  # documents were embedded as search_document
        response = runtime.invoke_model(
            modelId=settings.model_id,
            body=json.dumps(body),
            contentType="application/json",
            accept="application/json",
        )
        answer = json.loads(response["body"].read())
        vector = answer["embedding"] if "embedding" in answer else answer["embeddings"][0]
        return [float(x) for x in vector]

    return embed
