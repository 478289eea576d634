"""Batch inference emulators (SageMaker Batch Transform, Bedrock batch) on the local model inside moto.

`install()` is called once in the process that hosts moto: the moto server (local/aws/server.py) with the
server's own URL, or a test under `moto.mock_aws` with no URL. From then on CreateTransformJob really
transforms, DescribeTransformJob shows the live state and StopTransformJob stops the worker.
"""

from __future__ import annotations

from local.emulators import bedrock_api
from local.emulators.s3_io import client_factory
from local.emulators.sagemaker_api import TransformService, patch_moto, unpatch_moto
from local.emulators.sagemaker_transform import EmbedderLoader
from local.model import load_embedder


def install(
    s3_endpoint_url: str | None = None,
    *,
    embedder_loader: EmbedderLoader | None = None,
    model_workers: bool = False,
) -> None:
    """Patch moto's SageMaker backend so transform jobs run on the local model.

    s3_endpoint_url: where the worker reads input and writes output, e.g. "http://127.0.0.1:5000" inside
    the moto server; None inside an in-process `moto.mock_aws`. embedder_loader maps a model folder (None =
    the packaged MiniLM) to an Embedder; tests pass one to control the model. Calling install() again
    replaces the settings. model_workers: each transform job's model runs in a container process of its
    own (transform_worker.py), which the AWS emulator's server uses so a fault can kill one mid-job.
    """
    loader = embedder_loader or load_embedder
    s3_clients = client_factory(s3_endpoint_url)
    patch_moto(TransformService(s3_clients, loader, model_workers=model_workers))
    # Bedrock batch inference on the same model (the packaged MiniLM; Bedrock names no model folder).
    bedrock_api.patch_moto(bedrock_api.InvocationService(s3_clients, lambda: loader(None)))


def uninstall() -> None:
    """Undo install(): moto's own transform jobs again. Jobs already running finish on their threads."""
    unpatch_moto()
    bedrock_api.unpatch_moto()
