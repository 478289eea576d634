"""The search side of a pipeline config: ML Commons models, search pipelines and query settings.

Everything OpenSearch's page "ML inference search response processor" says about the processor
(https://docs.opensearch.org/latest/search-plugins/search-pipelines/ml-inference-search-response/)
is checked here, before anything is sent, so a bad config fails `osbatch setup` (and synth) with a message
naming the field rather than failing on the cluster, or worse, being accepted and doing something else at
query time. The rules follow ML Commons' own factory (MLInferenceSearchResponseProcessor.Factory, 3.6) plus
the ones it leaves to run time (a `_request.` path that is not a JSONPath, a `${input_map.x}` placeholder
nothing fills).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from osbatch.jsonpaths import compile_path
from osbatch.strict import Strict

NAME = r"^[a-z][a-z0-9_-]{0,62}$"
# Output keys under this prefix go into the search response's `ext`, not into hits (the processor page).
EXTENSION_PREFIX = "ext.ml_inference."
REQUEST_PREFIXES = ("$._request.", "_request.")
REMOTE = "remote"
# function_name values ML Commons accepts for a local model in this processor (the processor page).
LOCAL_FUNCTIONS = frozenset({"text_embedding", "text_similarity", "sparse_encoding", "sparse_tokenize"})
DEFAULT_MAX_PREDICTION_TASKS = 10
_PLACEHOLDER = re.compile(r"\$\{(input_map|model_config|ml_inference)\.([^}]+)\}")


class Task(StrEnum):
    """What a model computes; it decides the connector's request and response shapes."""

    TEXT_EMBEDDING = "text_embedding"
    TEXT_SIMILARITY = "text_similarity"
    GENERATE = "generate"


class SageMakerEndpoint(Strict):
    endpoint: str = Field(min_length=1, max_length=63, description="a real-time SageMaker endpoint name")
    region: str | None = None


class BedrockModel(Strict):
    model: str = Field(min_length=1, description="a Bedrock model id, e.g. amazon.titan-embed-text-v2:0")
    region: str | None = None
    # Titan Text Embeddings V2's output size ("Amazon Titan Embeddings G1 - Text", V2 request:
    # https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html); the model
    # answers 1024 without it. A query model must give the size the documents were embedded in.
    dimensions: Literal[256, 512, 1024] | None = None


class RemoteModel(Strict):
    """Where the model runs on AWS. Locally every remote model is served by the local model server."""

    sagemaker: SageMakerEndpoint | None = None
    bedrock: BedrockModel | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> RemoteModel:
        if self.sagemaker and self.bedrock:
            raise ValueError("set one of 'sagemaker' or 'bedrock', not both")
        return self


class OnnxModel(Strict):
    """A model ML Commons itself runs (function_name text_embedding). Locally: the packaged MiniLM."""

    packaged: Literal["all-MiniLM-L6-v2"] = "all-MiniLM-L6-v2"


class ModelSpec(Strict):
    name: str = Field(pattern=NAME, description="search pipelines name it in `model`")
    description: str = ""
    task: Task
    remote: RemoteModel | None = None
    onnx: OnnxModel | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        if (self.remote is None) == (self.onnx is None):
            raise ValueError(f"model {self.name}: set exactly one of 'remote' or 'onnx'")
        if self.onnx is not None and self.task is not Task.TEXT_EMBEDDING:
            raise ValueError(f"model {self.name}: an onnx model can only do task text_embedding")
        if self.remote and self.remote.bedrock and self.task is Task.TEXT_SIMILARITY:
            raise ValueError(
                f"model {self.name}: text_similarity connects to a SageMaker cross-encoder endpoint; "
                "Bedrock rerank models answer in another shape"
            )
        if self.remote and self.remote.sagemaker and self.task is Task.GENERATE:
            raise ValueError(f"model {self.name}: task generate connects to a Bedrock model, not SageMaker")
        return self

    @property
    def function_name(self) -> str:
        return REMOTE if self.remote is not None else self.task.value


FieldMap = dict[str, str]


class MlInferenceProcessor(Strict):
    """The `ml_inference` search response processor, every parameter of its page."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, protected_namespaces=())

    model: str | None = Field(None, description="a name from `models:`, resolved to its id at setup")
    model_id: str | None = None
    function_name: str = REMOTE
    model_input: str | None = None
    config: dict[str, Any] | None = Field(None, alias="model_config")
    input_map: list[FieldMap] = Field(default_factory=list)
    output_map: list[FieldMap] = Field(default_factory=list)
    optional_input_map: list[FieldMap] = Field(default_factory=list)
    optional_output_map: list[FieldMap] = Field(default_factory=list)
    full_response_path: bool | None = None
    one_to_one: bool = False
    override: bool = False
    ignore_missing: bool = False
    ignore_failure: bool = False
    max_prediction_tasks: int = Field(DEFAULT_MAX_PREDICTION_TASKS, ge=1)
    description: str | None = None
    tag: str | None = None

    @field_validator("function_name")
    @classmethod
    def _known_function(cls, value: str) -> str:
        name = value.lower()  # ML Commons reads it case-insensitively ("REMOTE" on its page)
        if name != REMOTE and name not in LOCAL_FUNCTIONS:
            known = ", ".join(sorted({REMOTE, *LOCAL_FUNCTIONS}))
            raise ValueError(f"function_name '{value}' is not one of {known}")
        return name

    @field_validator("input_map", "output_map", "optional_input_map", "optional_output_map")
    @classmethod
    def _non_empty_entries(cls, maps: list[FieldMap]) -> list[FieldMap]:
        for position, mapping in enumerate(maps):
            if not mapping:
                raise ValueError(f"entry {position} is empty; each entry maps at least one field")
            for key, value in mapping.items():
                if not key or not value:
                    raise ValueError(f"entry {position}: '{key}': '{value}' needs a non-empty name and path")
        return maps

    @model_validator(mode="after")
    def _documented_rules(self) -> MlInferenceProcessor:
        if (self.model is None) == (self.model_id is None):
            raise ValueError("set exactly one of 'model' (a name from models:) or 'model_id'")
        if self.function_name != REMOTE and self.model_input is None:
            raise ValueError(f"function_name {self.function_name} is a local model: it needs model_input")
        inputs = [*self.input_map, *self.optional_input_map]
        outputs = [*self.output_map, *self.optional_output_map]
        if len(inputs) > self.max_prediction_tasks:
            raise ValueError(
                f"input_map has {len(inputs)} entries, one prediction each, over max_prediction_tasks "
                f"{self.max_prediction_tasks}"
            )
        if inputs and outputs and len(inputs) != len(outputs):
            raise ValueError(
                f"input_map has {len(inputs)} entries and output_map {len(outputs)}; entry N of one "
                "pairs with entry N of the other, so their lengths must match"
            )
        to_extension = [key for mapping in outputs for key in mapping if key.startswith(EXTENSION_PREFIX)]
        if to_extension and self.one_to_one:
            raise ValueError(
                f"output_map writes {to_extension[0]} to the response ext, which one_to_one does not "
                "allow (each hit gets its own prediction)"
            )
        for mapping in outputs:
            for key in mapping:
                if key.startswith("ext.") and not key.startswith(EXTENSION_PREFIX):
                    raise ValueError(
                        f"output_map key {key}: only {EXTENSION_PREFIX}<name> goes into the response ext; "
                        "any other dotted key becomes a document field of that literal name"
                    )
        for mapping in inputs:
            for path in mapping.values():
                _check_request_path(path)
        self._check_placeholders(inputs)
        return self

    def _check_placeholders(self, inputs: list[FieldMap]) -> None:
        if self.model_input is None:
            return
        fed = {key for mapping in inputs for key in mapping}
        configured = set(self.config or {})
        for source, name in _PLACEHOLDER.findall(self.model_input):
            if source == "input_map" and name not in fed:
                raise ValueError(
                    f"model_input uses ${{input_map.{name}}}, but no input_map entry has '{name}'"
                )
            if source == "model_config" and name not in configured:
                raise ValueError(
                    f"model_input uses ${{model_config.{name}}}, but model_config has no '{name}'"
                )
            if source == "ml_inference" and name != "parameters":
                raise ValueError(
                    f"model_input uses ${{ml_inference.{name}}}; only ${{ml_inference.parameters}}"
                )

    def body(self, model_id: str) -> dict[str, Any]:
        """The processor as OpenSearch takes it, with `model` resolved to `model_id`."""
        body = self.model_dump(by_alias=True, exclude_none=True, exclude={"model", "model_id"})
        for key in ("input_map", "output_map", "optional_input_map", "optional_output_map"):
            if not body.get(key):
                body.pop(key, None)
        return {"model_id": model_id, **body}


def _check_request_path(path: str) -> None:
    """A `_request.` path reads the search request; it must be a JSONPath into it (the processor page)."""
    for prefix in REQUEST_PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if not rest:
                raise ValueError(f"input_map path {path} names no field of the search request")
            compile_path(f"$.{rest}")
            return
    if path.startswith(("request.", "$.request.")):
        raise ValueError(f"input_map path {path}: a search request path starts with _request. (underscore)")


class ByField(Strict):
    target_field: str = Field(min_length=1)
    remove_target_field: bool = False
    keep_previous_score: bool = False


class RerankProcessor(Strict):
    """neural-search's `rerank` response processor; osbatch provisions its `by_field` form."""

    by_field: ByField
    tag: str | None = None
    description: str | None = None
    ignore_failure: bool = False


class MlInferenceStep(Strict):
    ml_inference: MlInferenceProcessor


class RerankStep(Strict):
    rerank: RerankProcessor


ResponseStep = MlInferenceStep | RerankStep


class SearchPipelineSpec(Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    response_processors: list[ResponseStep] = Field(min_length=1)

    @field_validator("response_processors", mode="before")
    @classmethod
    def _one_processor_per_entry(cls, value: Any) -> Any:
        # The processor page writes `{"ml_inference": {...}, "rerank": {...}}` as one entry; OpenSearch
        # reads each key as its own processor, in order, so it is split here the same way.
        if not isinstance(value, list):
            return value
        steps: list[Any] = []
        for entry in value:
            if isinstance(entry, dict) and len(entry) > 1:
                steps.extend({key: item} for key, item in entry.items())
            else:
                steps.append(entry)
        return steps

    def body(self, model_ids: dict[str, str]) -> dict[str, Any]:
        """PUT /_search/pipeline/<name> body; model_ids maps model names to ids."""
        processors: list[dict[str, Any]] = []
        for step in self.response_processors:
            if isinstance(step, MlInferenceStep):
                processor = step.ml_inference
                model_id = processor.model_id or model_ids[processor.model or ""]
                processors.append({"ml_inference": processor.body(model_id)})
            else:
                processors.append({"rerank": step.rerank.model_dump(exclude_none=True)})
        body: dict[str, Any] = {"response_processors": processors}
        if self.description:
            body["description"] = self.description
        return body


class HybridSpec(Strict):
    """The normalization processor of the search pipeline `osbatch search --mode hybrid` uses."""

    normalization: Literal["min_max", "l2", "z_score"] = "min_max"
    combination: Literal["arithmetic_mean", "geometric_mean", "harmonic_mean"] = "arithmetic_mean"
    weights: tuple[float, float] = Field(
        (0.3, 0.7), description="BM25 on the text field, then the vector query; they must add up to 1"
    )

    @field_validator("weights")
    @classmethod
    def _sum_to_one(cls, weights: tuple[float, float]) -> tuple[float, float]:
        if any(weight < 0 for weight in weights) or abs(sum(weights) - 1.0) > 1e-6:
            raise ValueError(f"weights {list(weights)} must be non-negative and add up to 1")
        return weights


class SearchSpec(Strict):
    text_field: str = Field("chunk", min_length=1, description="BM25 side of hybrid search")
    vector_field: str | None = Field(None, description="default: the mapping's knn_vector field")
    query_model: str | None = Field(None, description="a text_embedding model from `models:`")
    hybrid: HybridSpec = HybridSpec()
