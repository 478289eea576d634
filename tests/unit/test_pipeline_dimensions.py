"""Every shipped pipeline's k-NN field is as wide as the vectors its backend is asked for.

The emulators answer in the requested size, as the services do, so a mapping that disagrees with the
config fails at ingest, locally as on AWS; this catches it before anything runs.
"""

from __future__ import annotations

import pytest

from infra.pipelines import load_pipelines
from local.emulators.openai_server import MODEL_DIMENSIONS as OPENAI_FULL_SIZES
from osbatch.chunking.mapping import nested_vector_fields
from osbatch.config import Backend, BedrockModelFamily, PipelineConfig
from osbatch.search.queries import vector_field
from tests.unit.helpers import REPO

GLOBS = ("pipelines/*.yaml", "pipelines/examples/*.yaml", "tests/integration/pipelines/*.yaml")


def requested_size(config: PipelineConfig) -> int | None:
    """The size the backend is asked to embed in, where the config says it."""
    bedrock, openai = config.inference.bedrock, config.inference.openai
    if config.inference.backend is Backend.BEDROCK and bedrock is not None:
        return bedrock.dimensions if bedrock.family is BedrockModelFamily.TITAN_EMBED_V2 else None
    if (
        config.inference.backend is Backend.OPENAI
        and openai is not None
        and openai.endpoint == "/v1/embeddings"
    ):
        return openai.dimensions or OPENAI_FULL_SIZES.get(openai.model)  # what OpenAI answers without one
    return None


CONFIGS = [config for pattern in GLOBS for config in load_pipelines(pattern, REPO) if requested_size(config)]


@pytest.mark.parametrize("config", CONFIGS, ids=[config.name for config in CONFIGS])
def test_the_mapping_is_as_wide_as_the_requested_vectors(config: PipelineConfig) -> None:
    # Given a pipeline that asks its backend for vectors of a known size
    properties = config.sink.mapping["mappings"]["properties"]
    # Then its k-NN field (a chunking pipeline's: inside its nested passages) has that dimension
    nested = nested_vector_fields(config.sink.mapping) if config.source.chunking else []
    field = (
        properties[nested[0].field]["properties"][nested[0].vector]
        if nested
        else properties[vector_field(config)]
    )
    assert field["dimension"] == requested_size(config)
