"""Provision a pipeline's search side from its config: index, connectors and models, search pipelines.

Re-running changes nothing, and a changed config updates in place:
- a model's description ends with the fingerprint of what defines it (its connector, or its ONNX artifact
  and settings); an unchanged fingerprint means nothing is sent but a deploy, if the model is not deployed;
- a remote model whose connector changed is undeployed, its connector updated and the model redeployed, so
  its id, and every search pipeline that names it, stays valid;
- an ONNX model whose artifact changed is replaced (ML Commons cannot swap a local model's content);
- a search pipeline is written only when the stored one differs from the config's.
A pipeline with the `ml-commons` backend also gets its batch model (search/batch_connector.py), kept the
same way as any remote model.
The same code runs in `osbatch setup` and in the provisioning custom resource; the client is injected.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from osbatch.config import Backend, PipelineConfig
from osbatch.search.batch_connector import batch_connector_body, settings_of
from osbatch.search.connectors import ConnectorTarget, connector_body
from osbatch.search.index import ensure_compatible_index
from osbatch.search.ml import DEPLOYED, MlCommons
from osbatch.search_config import ModelSpec, OnnxModel

# In parentheses: ML Commons allows only letters, digits, spaces and basic punctuation in descriptions.
FINGERPRINT = re.compile(r"\s*\(osbatch ([0-9a-f]{12})\)$")
MINILM_CONFIG = {
    "model_type": "bert",
    "embedding_dimension": 384,
    "framework_type": "sentence_transformers",
    "pooling_mode": "MEAN",
    "normalize_result": True,
}


class ProvisionError(ValueError):
    """The config cannot be provisioned where it is being provisioned; the message says why."""


@dataclass(frozen=True)
class OnnxArtifact:
    """A model zip ML Commons can register from a URL: the .onnx graph and tokenizer.json."""

    url: str
    sha256: str
    size: int


OnnxSource = Callable[[OnnxModel], OnnxArtifact]


@dataclass(frozen=True)
class Change:
    kind: str  # index, model, search pipeline
    name: str
    action: str  # created, updated, replaced, deployed, unchanged
    detail: str = ""

    def describe(self) -> str:
        return f"{self.kind} {self.name}: {self.action}{f' ({self.detail})' if self.detail else ''}"


@dataclass
class Provisioned:
    changes: list[Change] = field(default_factory=list)
    model_ids: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)


def hybrid_pipeline_name(config: PipelineConfig) -> str:
    """The search pipeline `osbatch search --mode hybrid` runs through."""
    return f"{config.name}-hybrid"


def hybrid_pipeline_body(config: PipelineConfig) -> dict[str, Any]:
    hybrid = config.search.hybrid
    return {
        "description": f"osbatch {config.name}: BM25 on {config.search.text_field} and k-NN, normalized",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": hybrid.normalization},
                    "combination": {
                        "technique": hybrid.combination,
                        "parameters": {"weights": list(hybrid.weights)},
                    },
                }
            }
        ],
    }


def provision_search(
    client: Any,
    config: PipelineConfig,
    *,
    target: ConnectorTarget,
    mapping: dict[str, Any] | None = None,
    onnx: OnnxSource | None = None,
    ml: MlCommons | None = None,
) -> Provisioned:
    """Bring the cluster to what `config` says. `mapping` overrides sink.mapping (the local node's lucene)."""
    ml = ml or MlCommons(client)
    result = Provisioned()
    created = ensure_compatible_index(
        client, config.sink.index, mapping if mapping is not None else config.sink.mapping
    )
    result.changes.append(Change("index", config.sink.index, "created" if created else "unchanged"))
    for model in config.models:
        model_id, change = _ensure_model(ml, model, target, onnx)
        result.model_ids[model.name] = model_id
        result.changes.append(change)
    if config.inference.backend is Backend.ML_COMMONS:
        model_id, change = _ensure_batch_model(ml, config, target)
        result.model_ids[settings_of(config).model] = model_id
        result.changes.append(change)
    pipelines = [(spec.name, spec.body(result.model_ids)) for spec in config.search_pipelines]
    pipelines.append((hybrid_pipeline_name(config), hybrid_pipeline_body(config)))
    for name, body in pipelines:
        result.changes.append(_ensure_search_pipeline(ml, name, body))
    return result


def _ensure_model(
    ml: MlCommons, model: ModelSpec, target: ConnectorTarget, onnx: OnnxSource | None
) -> tuple[str, Change]:
    if model.remote is not None:
        connector = connector_body(model, target)
        text = model.description or f"osbatch {model.task.value} model"
        return _ensure_remote(ml, model.name, text, connector)
    assert model.onnx is not None
    if onnx is None:
        raise ProvisionError(
            f"model {model.name}: ONNX models run inside ML Commons on the local node only; on Amazon "
            "OpenSearch Service use a remote model (sagemaker or bedrock)"
        )
    artifact = onnx(model.onnx)
    body = {
        "name": model.name,
        "version": "1.0.0",
        "model_format": "ONNX",
        "function_name": "TEXT_EMBEDDING",
        "model_content_hash_value": artifact.sha256,
        "model_content_size_in_bytes": artifact.size,
        "model_config": MINILM_CONFIG,
        "url": artifact.url,
    }
    return _ensure_onnx(ml, model, body, _fingerprint(body))


def _ensure_batch_model(ml: MlCommons, config: PipelineConfig, target: ConnectorTarget) -> tuple[str, Change]:
    """The `ml-commons` backend's model: AWS's SageMaker batch connector (search/batch_connector.py)."""
    settings = config.inference.ml_commons
    assert settings is not None, "only for pipelines with the ml-commons backend"
    text = f"osbatch {config.name} batch inference"
    return _ensure_remote(ml, settings.model, text, batch_connector_body(config, target))


def _ensure_remote(ml: MlCommons, name: str, text: str, connector: dict[str, Any]) -> tuple[str, Change]:
    fingerprint = _fingerprint({"connector": connector, "name": name, "function_name": "remote"})
    description = _with_fingerprint(text, fingerprint)
    existing = ml.find_model(name)
    if existing is None:
        connector_id = ml.create_connector(connector)
        model_id = ml.register(
            {
                "name": name,
                "function_name": "remote",
                "description": description,
                "connector_id": connector_id,
            }
        )
        ml.deploy(model_id)
        return model_id, Change("model", name, "created", model_id)
    model_id = str(existing["model_id"])
    if _stored_fingerprint(existing) == fingerprint:
        return model_id, _deployed(ml, name, existing)
    # Undeployed first: ML Commons refuses to update a connector that a deployed model uses.
    ml.undeploy(model_id)
    ml.update_connector(str(existing["connector_id"]), connector)
    ml.update_model(model_id, {"description": description})
    ml.deploy(model_id)
    return model_id, Change("model", name, "updated", f"{model_id}: connector changed")


def _ensure_onnx(
    ml: MlCommons, model: ModelSpec, body: dict[str, Any], fingerprint: str
) -> tuple[str, Change]:
    existing = ml.find_model(model.name)
    if existing is not None and _stored_fingerprint(existing) == fingerprint:
        return str(existing["model_id"]), _deployed(ml, model.name, existing)
    action = "created"
    if existing is not None:
        ml.undeploy(str(existing["model_id"]))
        ml.delete_model(str(existing["model_id"]))
        action = "replaced"
    text = model.description or f"osbatch {model.task.value} model"
    model_id = ml.register({**body, "description": _with_fingerprint(text, fingerprint)})
    ml.deploy(model_id)
    return model_id, Change("model", model.name, action, model_id)


def _deployed(ml: MlCommons, name: str, existing: dict[str, Any]) -> Change:
    model_id = str(existing["model_id"])
    if existing.get("model_state") == DEPLOYED:
        return Change("model", name, "unchanged", model_id)
    ml.deploy(model_id)  # after a node restart, or an undeploy by hand
    return Change("model", name, "deployed", model_id)


def _ensure_search_pipeline(ml: MlCommons, name: str, body: dict[str, Any]) -> Change:
    stored = ml.get_search_pipeline(name)
    if stored == body:
        return Change("search pipeline", name, "unchanged")
    ml.put_search_pipeline(name, body)
    return Change("search pipeline", name, "created" if stored is None else "updated")


def _fingerprint(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _with_fingerprint(text: str, fingerprint: str) -> str:
    return f"{text} (osbatch {fingerprint})"


def _stored_fingerprint(existing: dict[str, Any]) -> str | None:
    match = FINGERPRINT.search(str(existing.get("description", "")))
    return match.group(1) if match else None
