"""Inference backends, one module each, chosen by `inference.backend`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osbatch.backends.base import BatchBackend
from osbatch.config import Backend, PipelineConfig


def backend_for(
    config: PipelineConfig,
    client: Callable[[str], Any],
    *,
    bedrock_role_arn: str = "",
    opensearch: Callable[[], Any] | None = None,
) -> BatchBackend:
    """`client(name)` returns a boto3 client; injected so tests and the local runtime choose it.

    bedrock_role_arn: the stack's Bedrock job role, used unless the pipeline names its own.
    opensearch(): the pipeline's OpenSearch client, for the ml-commons backend."""
    tags = {"osbatch:pipeline": config.name}
    if config.inference.backend is Backend.SAGEMAKER:
        from osbatch.backends.sagemaker import SageMakerBackend

        assert config.inference.sagemaker is not None  # guaranteed by config validation
        return SageMakerBackend(config.inference.sagemaker, client("sagemaker"), client("s3"), tags)
    if config.inference.backend is Backend.BEDROCK:
        from osbatch.backends.bedrock import BedrockBackend

        assert config.inference.bedrock is not None  # guaranteed by config validation
        return BedrockBackend(
            config.inference.bedrock, client("bedrock"), client("s3"), tags, role_arn=bedrock_role_arn
        )
    if config.inference.backend is Backend.OPENAI:
        import time

        from osbatch.backends.openai import OpenAIBackend
        from osbatch.backends.openai_http import OpenAIHttp

        settings = config.inference.openai
        assert settings is not None  # guaranteed by config validation
        http = OpenAIHttp(settings.api_base, settings.api_key_secret, client("secretsmanager"))
        return OpenAIBackend(
            settings,
            http,
            client("s3"),
            retry_window_seconds=config.inference.retry_time_window_seconds,
            now=time.time,
        )
    if config.inference.backend is Backend.ML_COMMONS:
        from osbatch.backends.ml_commons import MlCommonsBackend
        from osbatch.search.ml import MlCommons

        assert config.inference.ml_commons is not None  # guaranteed by config validation
        if opensearch is None:
            raise ValueError("the ml-commons backend needs the pipeline's OpenSearch client")
        return MlCommonsBackend(config.inference.ml_commons, MlCommons(opensearch()), client("s3"))
    raise ValueError(f"no backend for '{config.inference.backend}'")
