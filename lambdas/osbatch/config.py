"""Pipeline config: one YAML file per pipeline, validated into typed models.

The same models are used at synth time (infra), by the CLI and inside Lambda, so a config that
synthesizes is a config the functions can run. Validation errors name the offending field.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from osbatch.jsonpaths import compile_path

# The deployed configs, as pipelines_to_json writes them, inside the `osbatch` package of the functions' code
# asset: synth writes the file (infra/code.py) and the handlers read it (handlers/wiring.py).
DEPLOYED_PIPELINES_FILE = "pipelines.json"


class ConfigError(ValueError):
    """A pipeline config is invalid. The message names the file and the field."""


class Strict(BaseModel):
    # Unknown keys are errors: a typo in a config must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(StrEnum):
    SAGEMAKER = "sagemaker"


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: str | int) -> int:
    """Seconds from '90', '2h', '15m', '1h30m' or an ISO-8601 'PT9M' (the form reference 000 uses)."""
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    if text.startswith("pt"):
        text = text[2:]
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"'{value}' is not a duration; use e.g. 90s, 15m, 2h or PT9M")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


Seconds = Annotated[int, Field(ge=1)]


class SourceConfig(Strict):
    prefix: str = Field(min_length=1, description="S3 key prefix that triggers this pipeline")
    suffix: str = ".jsonl"
    format: Literal["jsonl"] = "jsonl"
    id_path: str = "$._id"
    text_path: str = "$.text"

    @field_validator("id_path", "text_path")
    @classmethod
    def _valid_jsonpath(cls, value: str) -> str:
        compile_path(value)
        return value


class PollingConfig(Strict):
    interval_seconds: Seconds = 60
    max_interval_seconds: Seconds = 600
    backoff_rate: float = Field(1.5, ge=1.0, le=4.0)
    max_failed_polls: int = Field(10, ge=1, description="ML Commons marks a task UNREACHABLE after 10")
    timeout_hours: float = Field(72, gt=0, le=24 * 14)


class SageMakerJobConfig(Strict):
    """The CreateTransformJob settings reference 000 puts in the SageMaker batch connector."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    ModelName: str = Field(min_length=1, max_length=63)
    DataProcessing: dict[str, str] = Field(
        default_factory=lambda: {"InputFilter": "$.text", "JoinSource": "Input", "OutputFilter": "$"}
    )
    TransformInput: dict[str, Any] = Field(
        default_factory=lambda: {"ContentType": "application/json", "SplitType": "Line"}
    )
    TransformOutput: dict[str, Any] = Field(
        default_factory=lambda: {"AssembleWith": "Line", "Accept": "application/json"}
    )
    TransformResources: dict[str, Any] = Field(
        default_factory=lambda: {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}
    )
    MaxConcurrentTransforms: int = Field(4, ge=1)
    MaxPayloadInMB: int = Field(6, ge=1, le=100)
    BatchStrategy: Literal["SingleRecord", "MultiRecord"] = "MultiRecord"

    @model_validator(mode="after")
    def _line_framing(self) -> SageMakerJobConfig:
        # osbatch joins outputs to inputs line by line; any other framing would lose that join.
        if self.TransformInput.get("SplitType", "Line") != "Line":
            raise ValueError(
                "TransformInput.SplitType must be 'Line' (osbatch joins output lines to input lines)"
            )
        if self.TransformOutput.get("AssembleWith", "Line") != "Line":
            raise ValueError("TransformOutput.AssembleWith must be 'Line'")
        if self.DataProcessing.get("JoinSource", "Input") != "Input":
            raise ValueError(
                "DataProcessing.JoinSource must be 'Input' so each output line carries its record"
            )
        count = self.TransformResources.get("InstanceCount", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("TransformResources.InstanceCount must be a whole number of at least 1")
        return self


class InferenceConfig(Strict):
    backend: Backend
    max_jobs_in_flight: int = Field(4, ge=1, le=1000)
    max_records_per_part: int = Field(
        100_000, ge=1, description="records per prepared input file; SageMaker spreads files over instances"
    )
    retry_time_window: str = "PT2H"
    polling: PollingConfig = PollingConfig()
    sagemaker: SageMakerJobConfig | None = None

    @field_validator("retry_time_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def retry_time_window_seconds(self) -> int:
        return parse_duration(self.retry_time_window)

    @model_validator(mode="after")
    def _backend_settings_present(self) -> InferenceConfig:
        if self.backend is Backend.SAGEMAKER and self.sagemaker is None:
            raise ValueError(
                "backend 'sagemaker' needs an 'inference.sagemaker' section with at least ModelName"
            )
        return self


class OpenSearchTarget(Strict):
    endpoint: str | None = Field(
        None, description="https endpoint of an existing domain; SigV4 is granted to it"
    )
    create_domain: bool = False
    engine_version: str = "OpenSearch_2.19"
    instance_type: str = "r7g.large.search"
    instance_count: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _one_target(self) -> OpenSearchTarget:
        if bool(self.endpoint) == self.create_domain:
            raise ValueError("set exactly one of 'endpoint' (an existing domain) or 'create_domain: true'")
        if self.endpoint and not self.endpoint.startswith(("https://", "http://")):
            raise ValueError(
                "endpoint must start with https:// (http:// is accepted for the local node only)"
            )
        return self


MiB = 1024 * 1024


class BulkConfig(Strict):
    # AWS recommends 5-15 MiB bulk requests; vectors compress several-fold on the wire (gzip), but a domain's
    # request cap (http.max_content_length: 10 MiB on the smallest instance types, 100 MiB on large ones)
    # applies to the uncompressed body, which is what these sizes measure.
    max_bytes: int = Field(8 * MiB, ge=1024, le=100 * MiB, description="target size of one bulk request")
    max_request_bytes: int = Field(10 * MiB, ge=1024, le=100 * MiB, description="the domain's request cap")
    concurrency: int = Field(2, ge=1, le=32, description="bulk requests in flight per ingest chunk")
    max_retries: int = Field(5, ge=0, le=20)
    initial_backoff_seconds: float = Field(0.5, gt=0)
    max_backoff_seconds: float = Field(30, gt=0)
    domain_writers: int = Field(
        8, ge=1, le=1000, description="ingest chunks writing to the domain at once, over all jobs (start)"
    )
    domain_writers_max: int = Field(64, ge=1, le=1000, description="the most the adaptive limit grows to")
    relax_new_index: bool = Field(
        True, description="refresh_interval -1 and 0 replicas while loading a new index, restored after"
    )

    @model_validator(mode="after")
    def _under_the_cap(self) -> BulkConfig:
        if self.max_bytes > self.max_request_bytes:
            raise ValueError(
                f"max_bytes ({self.max_bytes}) is over max_request_bytes ({self.max_request_bytes}): "
                "the domain would refuse such requests with 413"
            )
        return self


class SinkConfig(Strict):
    opensearch: OpenSearchTarget
    index: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=255)
    mapping: dict[str, Any] = Field(
        default_factory=dict, description="index settings and mappings, as in PUT /<index>"
    )
    field_map: dict[str, str | list[str]] = Field(min_length=1)
    ingest_fields: list[str] = Field(default_factory=list)
    bulk: BulkConfig = BulkConfig()


class PipelineConfig(Strict):
    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,30}$", description="short id; used in resource and job names"
    )
    description: str = ""
    source: SourceConfig
    inference: InferenceConfig
    sink: SinkConfig
    search_pipelines: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _field_map_builds(self) -> PipelineConfig:
        # Build the very mapper ingest uses, so every mapping mistake surfaces at synth time, not mid-job.
        from osbatch.ingest.field_map import FieldMapper

        try:
            FieldMapper(self.sink.field_map, self.sink.ingest_fields, self.source.id_path)
        except ValueError as error:
            raise ValueError(f"sink.{error}") from None
        return self

    def to_json(self) -> str:
        # Defaults are left out: functions re-validate and restore them, and the deployed file stays short.
        return self.model_dump_json(exclude_defaults=True)


def _describe(error: ValidationError, origin: str) -> str:
    lines = []
    for issue in error.errors():
        where = ".".join(str(part) for part in issue["loc"])
        message = issue["msg"].removeprefix("Value error, ")
        if issue["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        # Whole-config checks name their own field in the message.
        lines.append(f"{origin}: {where}: {message}" if where else f"{origin}: {message}")
    return "\n".join(lines)


def parse_pipeline(data: Any, origin: str = "pipeline config") -> PipelineConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, origin)) from None


def load_pipeline(path: str | Path) -> PipelineConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such pipeline config") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_pipeline(data, str(path))


def pipelines_from_json(text: str) -> dict[str, PipelineConfig]:
    """The pipelines a function serves, as synth serialized them (a JSON list)."""
    configs = [parse_pipeline(item, "deployed config") for item in json.loads(text)]
    return {config.name: config for config in configs}


def pipelines_to_json(configs: list[PipelineConfig]) -> str:
    return json.dumps([json.loads(config.to_json()) for config in configs], separators=(",", ":"))
