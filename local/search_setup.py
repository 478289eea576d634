"""`osbatch setup` on the local node: remote models call the local model server, ONNX models load from a zip.

What differs from AWS is decided here and printed, as local/deploy.py does for the stack: k-NN mappings move
to lucene, and connectors call http://127.0.0.1 instead of SageMaker or Bedrock.
"""

from __future__ import annotations

from typing import Any

from local.model.ml_commons_zip import packaged_minilm_zip
from local.opensearch.mapping import localize_mapping
from local.paths import state_dir
from local.runtime import MODEL_URL, Progress
from osbatch.config import PipelineConfig
from osbatch.search.connectors import ConnectorTarget
from osbatch.search.provision import Provisioned, provision_search


def provision_local(client: Any, config: PipelineConfig, progress: Progress = print) -> Provisioned:
    mapping, notes = localize_mapping(config.sink.mapping, index=config.sink.index)
    for note in notes:
        progress(f"note: {note}")
    for model in config.models:
        if model.remote is not None:
            progress(f"note: model {model.name}: served by the local model server at {MODEL_URL}")
    return provision_search(
        client,
        config,
        target=ConnectorTarget(model_server_url=MODEL_URL),
        mapping=mapping,
        onnx=lambda _model: packaged_minilm_zip(state_dir() / "ml-models"),
    )
