"""Query vectors in the local runtime: the emulators' real-time APIs, or the local MiniLM where it is the
batch model. Imports local/, so only the commands that act on the local runtime import it (pyproject.toml's
import contracts).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cli.search import query_embedder
from local.aws import session
from local.deploy import with_local_openai
from local.model import OnnxSentenceEmbedder
from local.runtime import AWS_URL, OPENAI_URL
from osbatch.backends.query_vectors import QueryEmbedder
from osbatch.config import PipelineConfig


@lru_cache(maxsize=1)
def _minilm() -> OnnxSentenceEmbedder:
    return OnnxSentenceEmbedder.default()


def minilm_query_vector(text: str) -> list[float]:
    """The local MiniLM's vector of one query: what the local SageMaker and ML Commons jobs embed with."""
    return [float(x) for x in _minilm().embed([text])[0]]


def local_query_embedder(config: PipelineConfig) -> QueryEmbedder | None:
    """query_embedder against the local runtime: its AWS emulator, its OpenAI emulator, its MiniLM."""
    (config,) = with_local_openai([config], OPENAI_URL)  # as deploy_local points the functions there
    aws = session()

    def client(service: str) -> Any:
        return aws.client(service, endpoint_url=AWS_URL)  # type: ignore[call-overload]

    return query_embedder(config, client, local_model=minilm_query_vector)
