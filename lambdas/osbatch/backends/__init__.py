"""Inference backends, one module each, chosen by `inference.backend`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osbatch.backends.base import BatchBackend
from osbatch.config import Backend, PipelineConfig


def backend_for(config: PipelineConfig, client: Callable[[str], Any]) -> BatchBackend:
    """`client(name)` returns a boto3 client; injected so tests and the local runtime choose it."""
    tags = {"osbatch:pipeline": config.name}
    if config.inference.backend is Backend.SAGEMAKER:
        from osbatch.backends.sagemaker import SageMakerBackend

        assert config.inference.sagemaker is not None  # guaranteed by config validation
        return SageMakerBackend(config.inference.sagemaker, client("sagemaker"), client("s3"), tags)
    raise ValueError(f"no backend for '{config.inference.backend}'")
