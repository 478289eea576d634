"""`osbatch setup` on the local node: remote models call the local model server, ONNX models load from a zip.

What differs from AWS is decided here and printed, as local/deploy.py does for the stack: k-NN mappings move
to lucene, and connectors call http://127.0.0.1 instead of SageMaker or Bedrock (the ml-commons backend's
batch connector calls the AWS emulator's SageMaker transform jobs).
"""

from __future__ import annotations

from typing import Any

from local.emulators.node_facing import ENV, node_facing_host, url_host
from local.model.ml_commons_zip import packaged_minilm_zip
from local.opensearch.mapping import localize_mapping
from local.paths import state_dir
from local.runtime import AWS_PORT, AWS_URL, MODEL_URL, Progress
from osbatch.config import Backend, PipelineConfig
from osbatch.search.connectors import ConnectorTarget
from osbatch.search.provision import Provisioned, ProvisionError, provision_search


def node_facing_aws_url() -> str:
    """Where ML Commons' batch calls reach the AWS emulator (local/emulators/node_facing.py says why)."""
    host = node_facing_host()
    if host is None:
        raise ProvisionError(
            "the ml-commons backend needs an address of this machine that ML Commons does not treat as "
            "private (its batch status and cancel calls ignore connector.private_ip_enabled); this machine "
            "has none. "
            f"Set {ENV} to one, then restart the runtime (osbatch down && osbatch up)"
        )
    return f"http://{url_host(host)}:{AWS_PORT}"


def provision_local(client: Any, config: PipelineConfig, progress: Progress = print) -> Provisioned:
    mapping, notes = localize_mapping(config.sink.mapping, index=config.sink.index)
    for note in notes:
        progress(f"note: {note}")
    for model in config.models:
        if model.remote is not None:
            progress(f"note: model {model.name}: served by the local model server at {MODEL_URL}")
    aws_url = AWS_URL
    if config.inference.backend is Backend.ML_COMMONS:
        aws_url = node_facing_aws_url()
        progress(f"note: the batch connector calls SageMaker transform jobs of the AWS emulator at {aws_url}")
    return provision_search(
        client,
        config,
        target=ConnectorTarget(model_server_url=MODEL_URL, aws_endpoint_url=aws_url),
        mapping=mapping,
        onnx=lambda _model: packaged_minilm_zip(state_dir() / "ml-models"),
    )
