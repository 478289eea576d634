"""Pipeline config: one YAML file per pipeline, validated into typed models.

The same models are used at synth time (infra), by the CLI and inside Lambda, so a config that
synthesizes is a config the functions can run. Validation errors name the offending field.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import AfterValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from osbatch.chunking.spec import ChunkingConfig, IndexLayout, TokenizerName
from osbatch.chunking.tokens import MAX_TOKENS
from osbatch.jsonpaths import compile_path
from osbatch.search_config import MlInferenceStep, ModelSpec, SearchPipelineSpec, SearchSpec, Task
from osbatch.strict import Strict

# The deployed configs, as pipelines_to_json writes them, inside the `osbatch` package of the functions' code
# asset: synth writes the file (infra/code.py) and the handlers read it (handlers/wiring.py).
DEPLOYED_PIPELINES_FILE = "pipelines.json"
# all-MiniLM-L6-v2's tokenizer.json, beside it when a deployed pipeline chunks by MiniLM tokens: what
# chunking counts a passage's tokens with (osbatch.chunking.tokens). Written by synth, read by the handlers.
MINILM_TOKENIZER_FILE = "minilm-tokenizer.json"


def needs_minilm_tokenizer(pipelines: Sequence[PipelineConfig]) -> bool:
    """Whether any of these pipelines chunks by all-MiniLM-L6-v2 tokens (MINILM_TOKENIZER_FILE ships then)."""
    return any(config.chunking_tokenizer is TokenizerName.MINILM for config in pipelines)


class ConfigError(ValueError):
    """A pipeline config is invalid. The message names the file and the field."""


class Backend(StrEnum):
    SAGEMAKER = "sagemaker"
    BEDROCK = "bedrock"
    OPENAI = "openai"
    ML_COMMONS = "ml-commons"


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: str | int) -> int:
    """Seconds from '90', '2h', '15m', '1h30m' or an ISO-8601 'PT9M' (the form the pipelines in AWS's
    offline batch inference page use; cited at SageMakerJobConfig)."""
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


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: a host whose traffic never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_text_slot(value: str) -> str:
    if "{text}" not in value:
        raise ValueError("prompt must contain {text}, where the record's text goes")
    return value


# An enrichment prompt (Bedrock Claude, OpenAI chat): the record's text goes where it says {text}.
Prompt = Annotated[str, AfterValidator(_has_text_slot)]


class SourceConfig(Strict):
    prefix: str = Field(min_length=1, description="S3 key prefix that triggers this pipeline")
    suffix: str = ".jsonl"
    format: Literal["jsonl"] = "jsonl"
    id_path: str = "$._id"
    text_path: str = "$.text"
    chunking: ChunkingConfig | None = Field(
        None,
        description="split each record's text into passages (osbatch.chunking); none: one input per record",
    )
    incremental: bool = Field(
        True,
        description="skip inference for records whose embedded input (text, chunking, model) is unchanged "
        "since osbatch last indexed them (osbatch.incremental, docs/cost.md)",
    )
    sync: Literal["keep", "mirror"] = Field(
        "keep",
        description="mirror: a completed job also deletes the documents an earlier version of the same S3 "
        "key wrote that the new version no longer has; keep: they stay, and the report counts them",
    )

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

    @model_validator(mode="after")
    def _grows_to_the_maximum(self) -> PollingConfig:
        if self.interval_seconds > self.max_interval_seconds:
            raise ValueError(
                f"interval_seconds ({self.interval_seconds}) is above max_interval_seconds "
                f"({self.max_interval_seconds}); the wait grows from the first to the second"
            )
        return self


def next_wait_seconds(wait_seconds: int, polling: PollingConfig) -> int:
    """The wait before the next poll: grown by backoff_rate (rounded up) to max_interval_seconds. PollJob
    applies it; the synth-time history check (infra/history.py) replays it to count a job's polls."""
    return min(polling.max_interval_seconds, math.ceil(wait_seconds * polling.backoff_rate))


class SageMakerJobConfig(Strict):
    """The CreateTransformJob settings of the SageMaker batch connector in AWS's page "Using an OpenSearch
    Ingestion pipeline with machine learning offline batch inference":
    https://docs.aws.amazon.com/opensearch-service/latest/developerguide/configure-clients-ml-commons-batch.html
    """

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


S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
# <account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest]: a private ECR image URI.
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})?$"
)


class SageMakerModelAccess(Strict):
    """What SageMaker's execution role (stack output SageMakerRoleArn) may read to run the model you create
    with it: its artifacts and its container image. Nothing else is granted, so CreateModel fails fast on
    anything this does not name."""

    model_data_url: str | None = Field(
        None, description="the model's ModelDataUrl: s3://bucket/key.tar.gz, or s3://bucket/prefix/ for many"
    )
    kms_key_arn: str | None = Field(None, description="the KMS key the model artifacts are encrypted with")
    image_accounts: list[str] = Field(
        default_factory=list,
        description="accounts whose ECR repositories hold the model's image, besides the stack's own "
        "(e.g. the AWS account of a Deep Learning Container in your region)",
    )
    image: str | None = Field(
        None,
        description="the model's container image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)"
        "; given, pulls are held to that one repository instead of any repository of the accounts",
    )

    @field_validator("image")
    @classmethod
    def _ecr_image(cls, value: str | None) -> str | None:
        if value is not None and not ECR_IMAGE.match(value):
            raise ValueError(
                f"'{value}' is not an ECR image URI like "
                "123456789012.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"
            )
        return value

    @field_validator("model_data_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is not None and not S3_URL.match(value):
            raise ValueError(f"'{value}' is not an S3 URL like s3://bucket/model.tar.gz")
        return value

    @field_validator("kms_key_arn")
    @classmethod
    def _key_arn(cls, value: str | None) -> str | None:
        if value is not None and not KMS_KEY_ARN.match(value):
            raise ValueError(f"'{value}' is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        return value

    @field_validator("image_accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        wrong = [account for account in value if not ACCOUNT_ID.match(account)]
        if wrong:
            raise ValueError(f"{wrong} are not 12-digit AWS account ids")
        return value


class BedrockModelFamily(StrEnum):
    """The request body a model takes (InvokeModel's `body`), which Prepare writes as `modelInput`."""

    TITAN_EMBED_V2 = "titan-embed-text-v2"
    COHERE_EMBED = "cohere-embed"
    ANTHROPIC_MESSAGES = "anthropic-messages"


class BedrockQuotas(Strict):
    """Bedrock's per-job batch inference quotas, per model and region (Service Quotas, service "Amazon
    Bedrock"). The defaults are the documented defaults, the same for every model osbatch has a template
    for (Titan Text Embeddings V2, Claude 3 / 3.5 Haiku and Sonnet), as the Amazon Bedrock service quotas
    table lists them: https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock (the quota
    names below are its rows; https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html
    says what each one counts). Some models differ (Nova Pro V1: a 100 GB job) and adjustable quotas may
    have been raised for an account, so set these to what Service Quotas shows for yours.
    """

    # "Minimum number of records per batch inference job for <model>": 100, not adjustable.
    min_records_per_job: int = Field(100, ge=1)
    # "Records per batch inference job for <model>": 50,000, adjustable.
    max_records_per_job: int = Field(50_000, ge=1)
    # "Records per input file per batch inference job for <model>": 50,000, adjustable.
    max_records_per_file: int = Field(50_000, ge=1)
    # "Batch inference input file size (in GB) for <model>": 1 GB, not adjustable.
    max_file_bytes: int = Field(1_000_000_000, ge=1024)
    # "Batch inference job size (in GB) for <model>": 5 GB (all input files together), not adjustable.
    max_job_bytes: int = Field(5_000_000_000, ge=1024)
    # "Sum of in-progress and submitted batch inference jobs using a base model for <model>": 20, adjustable
    # (3 for a custom model). Counted per account and region, over every pipeline using the model.
    max_jobs_in_progress: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _room_to_rebalance(self) -> BedrockQuotas:
        # Prepare moves records from the last full job to a last job under the minimum
        # (steps/support/parts.py); both stay at or above the minimum only if a job holds at least twice the
        # minimum.
        if self.max_records_per_job < 2 * self.min_records_per_job:
            raise ValueError(
                f"max_records_per_job ({self.max_records_per_job}) must be at least twice "
                f"min_records_per_job ({self.min_records_per_job})"
            )
        return self


# What Titan Text Embeddings V2 answers in when a request names no size.
TITAN_DEFAULT_DIMENSIONS: Literal[1024] = 1024


class BedrockJobConfig(Strict):
    """CreateModelInvocationJob settings and how each record becomes a `modelInput`."""

    model_id: str = Field(min_length=1, description="e.g. amazon.titan-embed-text-v2:0")
    role_arn: str = Field(
        "", description="the job role; empty means the stack's BedrockJobRoleArn (set by the stack)"
    )
    family: BedrockModelFamily
    # Titan Text Embeddings V2
    dimensions: Literal[256, 512, 1024] = TITAN_DEFAULT_DIMENSIONS
    normalize: bool = True
    # Cohere Embed
    input_type: Literal["search_document", "search_query", "classification", "clustering"] = "search_document"
    truncate: Literal["NONE", "START", "END"] = "END"
    # Anthropic Claude messages: `{text}` in the prompt is replaced by the record's text.
    prompt: Prompt = "Summarize the following text in two sentences:\n\n{text}"
    max_tokens: int = Field(512, ge=1, le=8192)
    anthropic_version: str = "bedrock-2023-05-31"
    timeout_hours: int = Field(24, ge=24, le=168, description="timeoutDurationInHours (24-168)")
    quotas: BedrockQuotas = BedrockQuotas()


class OpenAIJobConfig(Strict):
    """The OpenAI Batch API (https://platform.openai.com/docs/guides/batch) and its per-file limits."""

    api_base: str = Field("https://api.openai.com/v1", pattern=r"^https?://")
    # Secrets Manager secret (name or ARN) whose SecretString is the API key. The key itself never appears
    # in config, environment, logs, the state payload or the job table.
    api_key_secret: str = Field(min_length=1)
    model: str = Field(min_length=1, description="e.g. text-embedding-3-small")
    endpoint: Literal["/v1/embeddings", "/v1/chat/completions"] = "/v1/embeddings"
    dimensions: int | None = Field(None, ge=1)
    prompt: Prompt = "Summarize the following text in two sentences:\n\n{text}"
    max_tokens: int = Field(256, ge=1)
    # The Batch API's limits per input file (50,000 requests, 200 MB; 50,000 embedding inputs per batch).
    max_requests_per_file: int = Field(50_000, ge=1, le=50_000)
    max_file_bytes: int = Field(200 * 1000 * 1000, ge=1024, le=200 * 1000 * 1000)

    @field_validator("api_base")
    @classmethod
    def _no_cleartext_key(cls, value: str) -> str:
        # Every call carries `Authorization: Bearer <key>`; over http:// the key would cross the network in
        # cleartext. Loopback (the local OpenAI emulator, local/runtime.py) never leaves the machine.
        if value.startswith("http://") and not is_loopback(urlparse(value).hostname or ""):
            raise ValueError(
                f"'{value}': use https://; over http:// the API key (sent as a bearer token on every call) "
                "would cross the network in cleartext (http:// is accepted for a loopback host only)"
            )
        return value


class MlCommonsJobConfig(Strict):
    """ML Commons `_batch_predict` through a connector built from AWS's SageMaker batch blueprint.

    The blueprint is the SageMaker batch connector of AWS's page (see SageMakerJobConfig).

    `osbatch setup` (on AWS, the search provisioning custom resource) creates the connector and registers
    `model`; each job then calls `POST /_plugins/_ml/models/<id>/_batch_predict` with its own input and output
    locations, and ML Commons runs CreateTransformJob with these settings (backends/ml_commons.py)."""

    model: str = Field(
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$", description="the ML Commons model osbatch registers"
    )
    region: str | None = Field(None, description="SageMaker's region; default: the stack's")
    sagemaker: SageMakerJobConfig


class InferenceConfig(Strict):
    backend: Backend
    max_jobs_in_flight: int = Field(4, ge=1, le=1000)
    max_records_per_part: int = Field(
        100_000, ge=1, description="records per prepared input file; SageMaker spreads files over instances"
    )
    # Each remote job's output is ingested as it finishes, one pass of the workflow's ingest loop per
    # remote job; bounded so the worst case fits the execution history (infra/history.py counts it).
    max_remote_jobs: int = Field(
        100, ge=1, le=500, description="remote jobs one upload may become within the backend's per-job limits"
    )
    retry_time_window: str = "PT2H"
    # Waiting for one of max_jobs_in_flight slots is queueing, not a service refusing work: it has its own,
    # longer window: 100 uploads on 4 slots, 25 waves of a 1.4-hour transform job, all start within it.
    # Each retry writes 3 history events (infra/history.py): 48 h costs 876 of the 25,000.
    slot_wait_window: str = "48h"
    polling: PollingConfig = PollingConfig()
    sagemaker: SageMakerJobConfig | None = None
    sagemaker_model: SageMakerModelAccess = SageMakerModelAccess()
    bedrock: BedrockJobConfig | None = None
    openai: OpenAIJobConfig | None = None
    ml_commons: MlCommonsJobConfig | None = None

    @field_validator("retry_time_window", "slot_wait_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def retry_time_window_seconds(self) -> int:
        return parse_duration(self.retry_time_window)

    @property
    def slot_wait_window_seconds(self) -> int:
        return parse_duration(self.slot_wait_window)

    @model_validator(mode="after")
    def _backend_settings_present(self) -> InferenceConfig:
        if self.backend is Backend.SAGEMAKER and self.sagemaker is None:
            raise ValueError(
                "backend 'sagemaker' needs an 'inference.sagemaker' section with at least ModelName"
            )
        if self.backend is Backend.BEDROCK and self.bedrock is None:
            raise ValueError(
                "backend 'bedrock' needs an 'inference.bedrock' section with model_id and family"
            )
        if self.backend is Backend.OPENAI and self.openai is None:
            raise ValueError(
                "backend 'openai' needs an 'inference.openai' section with api_key_secret and model"
            )
        if self.backend is Backend.ML_COMMONS and self.ml_commons is None:
            raise ValueError(
                "backend 'ml-commons' needs an 'inference.ml_commons' section with model and "
                "sagemaker.ModelName"
            )
        return self


# Hosts of AWS-managed domains and collections: they are reached with SigV4 over HTTPS only.
AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
DEDICATED_MASTER_COUNTS = (3, 5)  # a quorum that survives losing a zone (or two, with five)
ZONES = 3  # a production domain spreads data nodes and masters over three zones


class OpenSearchTarget(Strict):
    endpoint: str | None = Field(
        None, description="https endpoint of an existing domain; SigV4 is granted to it"
    )
    create_domain: bool = False
    engine_version: str = "OpenSearch_2.19"
    instance_type: str = "r7g.large.search"
    instance_count: int = Field(3, ge=1, description="data nodes of a created domain")
    dedicated_master_count: int = Field(3, ge=0)
    dedicated_master_type: str = "m7g.large.search"
    fine_grained_access_control: bool = Field(
        False,
        description="a created domain enforces OpenSearch roles too; the stack maps the functions' roles",
    )
    development: bool = Field(
        False,
        description="allow a created domain without dedicated masters or three zones (1 or 2 data nodes): "
        "cheap, and it loses quorum or data with one node",
    )

    @model_validator(mode="after")
    def _one_target(self) -> OpenSearchTarget:
        if bool(self.endpoint) == self.create_domain:
            raise ValueError("set exactly one of 'endpoint' (an existing domain) or 'create_domain: true'")
        if self.endpoint and not self.endpoint.startswith(("https://", "http://")):
            raise ValueError(
                "endpoint must start with https:// (http:// is accepted for the local node only)"
            )
        host = (urlparse(self.endpoint).hostname or "") if self.endpoint else ""
        if self.endpoint and host.endswith(AWS_HOST_SUFFIXES) and not self.endpoint.startswith("https://"):
            # Plain http would go to port 80 unsigned: every request denied, or worse, sent in the clear.
            raise ValueError(f"endpoint: an AWS domain is reached over https only, not '{self.endpoint}'")
        if self.fine_grained_access_control and not self.create_domain:
            raise ValueError(
                "fine_grained_access_control: applies to a created domain; on an existing one, map the "
                "functions' roles yourself (docs/deploy.md)"
            )
        if self.create_domain and not self.development:
            self._production_shape()
        return self

    def _production_shape(self) -> None:
        if self.dedicated_master_count not in DEDICATED_MASTER_COUNTS:
            raise ValueError(
                f"dedicated_master_count: a created domain needs 3 or 5 dedicated masters, not "
                f"{self.dedicated_master_count} (set development: true for a smaller, non-production domain)"
            )
        if self.instance_count % ZONES:
            raise ValueError(
                f"instance_count: {self.instance_count} data nodes cannot spread evenly over {ZONES} zones; "
                "use a multiple of 3 (or development: true for 1 or 2 nodes)"
            )


MiB = 1024 * 1024
CHECKPOINT_BYTES = 32 * MiB


class BulkConfig(Strict):
    # AWS recommends 5-15 MiB bulk requests; vectors compress about 2x on the wire (gzip), but a domain's
    # request cap (http.max_content_length: 10 MiB on the smallest instance types, 100 MiB on large ones)
    # applies to the uncompressed body, which is what these sizes measure.
    max_bytes: int = Field(8 * MiB, ge=1024, le=100 * MiB, description="target size of one bulk request")
    max_request_bytes: int = Field(10 * MiB, ge=1024, le=100 * MiB, description="the domain's request cap")
    concurrency: int = Field(2, ge=1, le=32, description="bulk requests in flight per ingest chunk")
    # A saturated domain answers 429 (es_rejected_execution_exception) until its write queue drains: 10
    # retries, 0.5 s doubling to 30 s with full jitter, give it about two minutes before a record is
    # dead-lettered (make reliability, scenario b: 5 retries, about 15 s, dead-lettered 9 of 1,000). Once a
    # request's attempts all went unanswered (the node is gone), the chunk's later requests get one attempt
    # each (ingest/node_gone.py), so a job can end while its node is down.
    max_retries: int = Field(10, ge=0, le=20)
    initial_backoff_seconds: float = Field(0.5, gt=0)
    max_backoff_seconds: float = Field(30, gt=0)
    domain_writers: int = Field(
        8, ge=1, le=1000, description="ingest chunks writing to the domain at once, over all jobs (start)"
    )
    domain_writers_max: int = Field(64, ge=1, le=1000, description="the most the adaptive limit grows to")
    relax_new_index: bool = Field(
        True, description="refresh_interval -1 and 0 replicas while loading a new index, restored after"
    )
    # A checkpoint waits for the requests in flight, so it comes every few requests' worth of input.
    checkpoint_bytes: int = Field(
        CHECKPOINT_BYTES,
        ge=1024,
        description="input read between checkpoints: the most a killed attempt's retry redoes",
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
    layout: IndexLayout = Field(
        IndexLayout.RECORD,
        description="a chunking pipeline's documents: record (nested passages) or passage (one per passage)",
    )
    bulk: BulkConfig = BulkConfig()
    tolerated_chunk_failure_percentage: float = Field(
        0,
        ge=0,
        le=100,
        description="ingest chunks that may fail (after their retries) without failing the job; their "
        "records are reported unaccounted and the job PARTIALLY_COMPLETED. 0: any failed chunk fails the job",
    )


# How chunking counts tokens when the config does not say: the model each backend serves here (the local
# runtime and the examples run all-MiniLM-L6-v2 on SageMaker and ML Commons), or a safe upper bound for the
# hosted models whose tokenizers osbatch does not have (osbatch.chunking.tokens).
DEFAULT_TOKENIZERS = {
    Backend.SAGEMAKER: TokenizerName.MINILM,
    Backend.ML_COMMONS: TokenizerName.MINILM,
    Backend.BEDROCK: TokenizerName.UTF8_BYTES,
    Backend.OPENAI: TokenizerName.UTF8_BYTES,
}


# A price or throughput table entry as `osbatch plan` reads it (osbatch/planning/tables.py checks each one).
TableEntries = dict[str, dict[str, dict[str, Any]]]


class EstimatesConfig(Strict):
    """This pipeline's overrides of `osbatch plan`'s price and throughput tables (osbatch/planning/prices.yaml
    and throughput.yaml): entries of the same shape, each with its date and source. The plan checks them
    (an entry without a date is refused) and prefers them to the package's."""

    prices: TableEntries = Field(default_factory=dict, description="e.g. sagemaker: {ml.m5.xlarge: {...}}")
    throughput: TableEntries = Field(default_factory=dict, description="e.g. ingest: {docs_per_second: ...}")


class PipelineConfig(Strict):
    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,30}$", description="short id; used in resource and job names"
    )
    description: str = ""
    source: SourceConfig
    inference: InferenceConfig
    sink: SinkConfig
    models: list[ModelSpec] = Field(
        default_factory=list, description="ML Commons models `osbatch setup` registers"
    )
    search: SearchSpec = SearchSpec()
    search_pipelines: list[SearchPipelineSpec] = Field(default_factory=list)
    estimates: EstimatesConfig = EstimatesConfig()

    @model_validator(mode="after")
    def _field_map_builds(self) -> PipelineConfig:
        # Build the very mapper ingest uses, so every mapping mistake surfaces at synth time, not mid-job.
        from osbatch.field_map import FieldMapper

        try:
            FieldMapper(self.sink.field_map, self.sink.ingest_fields, self.source.id_path)
        except ValueError as error:
            raise ValueError(f"sink.{error}") from None
        return self

    @property
    def chunking_tokenizer(self) -> TokenizerName | None:
        """How this pipeline's chunking counts tokens (None: it does not chunk)."""
        chunking = self.source.chunking
        if chunking is None:
            return None
        return chunking.tokenizer or DEFAULT_TOKENIZERS[self.inference.backend]

    @model_validator(mode="after")
    def _chunking_fits_the_model(self) -> PipelineConfig:
        chunking, tokenizer = self.source.chunking, self.chunking_tokenizer
        if chunking is None and self.sink.layout is IndexLayout.PASSAGE:
            raise ValueError(
                "sink.layout: passage indexes a record's passages; set source.chunking to make them"
            )
        if chunking is None or tokenizer is None:
            return self
        most = MAX_TOKENS[tokenizer]
        for number, step in enumerate(chunking.algorithms):
            algorithm = step.fixed_token_length
            if algorithm is not None and algorithm.token_limit is not None and algorithm.token_limit > most:
                raise ValueError(
                    f"source.chunking.algorithms.{number}.fixed_token_length.token_limit: "
                    f"{algorithm.token_limit} is over the {most} tokens {tokenizer} passages may hold; "
                    f"use at most {most}"
                )
        self._chunking_has_a_layout()
        if tokenizer is TokenizerName.MINILM and not chunking.token_limits:
            # Delimiters alone leave passages of any length, and MiniLM would silently read only their start.
            raise ValueError(
                "source.chunking.algorithms: add a fixed_token_length step; all-MiniLM-L6-v2 reads "
                f"{most} tokens of a passage and would ignore the rest of longer ones"
            )
        return self

    def _chunking_has_a_layout(self) -> None:
        """A chunking pipeline sends passages of text_path and indexes them in a nested knn_vector field."""
        from osbatch.chunking.mapping import nested_vector_fields, passage_layout_fits
        from osbatch.record_paths import RecordPath

        if RecordPath(self.source.text_path).names is None:
            raise ValueError(
                f"source.text_path: '{self.source.text_path}' must be a path of field names ($.a.b) when "
                "source.chunking is set: each passage is sent in the record's place of its text"
            )
        if self.sink.layout is IndexLayout.PASSAGE:
            passage_layout_fits(self.sink.mapping, self.sink.field_map)
            return
        nested = nested_vector_fields(self.sink.mapping)
        if len(nested) != 1:
            found = ", ".join(field.field for field in nested) or "none"
            raise ValueError(
                "sink.mapping.mappings.properties: a chunking pipeline indexes each record's passages in one "
                "`nested` field whose properties hold a `knn_vector` (text, start, end and the vector), "
                f"OpenSearch's nested k-NN layout; found {found}"
            )
        field = nested[0].field
        clashing = [name for name in self.sink.field_map if name == field or name.startswith(f"{field}.")]
        if clashing:
            raise ValueError(
                f"sink.field_map.{clashing[0]}: the nested field '{field}' is filled with the passages; "
                "map the record's other fields only"
            )

    @model_validator(mode="after")
    def _search_references(self) -> PipelineConfig:
        models = {model.name: model for model in self.models}
        for names, what in (
            ([m.name for m in self.models], "models"),
            ([p.name for p in self.search_pipelines], "search_pipelines"),
        ):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise ValueError(f"{what}: {', '.join(duplicates)} defined more than once")
        for pipeline in self.search_pipelines:
            for step in pipeline.response_processors:
                if isinstance(step, MlInferenceStep) and step.ml_inference.model is not None:
                    _check_model_use(pipeline.name, step, models)
        batch = self.inference.ml_commons
        if self.inference.backend is Backend.ML_COMMONS and batch is not None and batch.model in models:
            raise ValueError(
                f"inference.ml_commons.model: '{batch.model}' is also in models:; the batch model is "
                "registered from its own connector, so give it a name of its own"
            )
        if self.search.query_model is not None:
            query_model = models.get(self.search.query_model)
            if query_model is None or query_model.task is not Task.TEXT_EMBEDDING:
                raise ValueError(
                    f"search.query_model: '{self.search.query_model}' is not a text_embedding model in "
                    "models:"
                )
            self._query_model_size(query_model)
        return self

    def _query_model_size(self, query_model: ModelSpec) -> None:
        """A Titan query model must answer in the size the batch job embedded the documents in."""
        batch = self.inference.bedrock
        remote = query_model.remote.bedrock if query_model.remote else None
        if batch is None or remote is None or remote.model != batch.model_id:
            return
        if (remote.dimensions or TITAN_DEFAULT_DIMENSIONS) != batch.dimensions:
            raise ValueError(
                f"models.{query_model.name}: answers in {remote.dimensions or TITAN_DEFAULT_DIMENSIONS} "
                f"dimensions, the batch job embeds in {batch.dimensions}; set its bedrock.dimensions: "
                f"{batch.dimensions}"
            )

    def to_json(self) -> str:
        # Defaults are left out: functions re-validate and restore them, and the deployed file stays short.
        # The search side is left out too: no job function reads it, and `osbatch setup` (or the
        # provisioning resource) gets it from the config itself.
        return self.model_dump_json(exclude_defaults=True, exclude={"models", "search", "search_pipelines"})


def _check_model_use(pipeline: str, step: MlInferenceStep, models: dict[str, ModelSpec]) -> None:
    processor = step.ml_inference
    model = models.get(processor.model or "")
    if model is None:
        known = ", ".join(sorted(models)) or "none"
        raise ValueError(
            f"search_pipelines.{pipeline}: model '{processor.model}' is not in models: (known: {known})"
        )
    if processor.function_name != model.function_name:
        raise ValueError(
            f"search_pipelines.{pipeline}: model '{model.name}' is a {model.function_name} model, "
            f"but the processor says function_name {processor.function_name}"
        )


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
