"""The composition root: the only Lambda code that reads the environment or builds clients.

Settings are validated from the environment at every invocation (cheap), and the Runtime with its
clients and the deployed pipeline configs is cached per Settings value rather than at import time. In
Lambda that is the usual warm-start reuse, and a deployment mistake fails the first invocation; in the
local runtime, where several functions share one process with different environments, it keeps each
function on its own configuration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from functools import cached_property, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from osbatch.backends import backend_for
from osbatch.backends.base import BatchBackend
from osbatch.chunking import Chunker, TokenCounter, TokenizerJsonCounter, TokenizerName, Utf8ByteEstimate
from osbatch.config import (
    DEPLOYED_PIPELINES_FILE,
    MINILM_TOKENIZER_FILE,
    PipelineConfig,
    pipelines_from_json,
)
from osbatch.dal import DomainWriters, JobStore, JobTable, LimitSettings, SlotWakeups, Wakeups
from osbatch.events import JobEvents
from osbatch.search.client import opensearch_client
from osbatch.steps.ingest_chunk import SinkDomain
from osbatch.steps.support.ports import DeployedPipeline
from osbatch.steps.support.slot_wake import SlotRelease

# Standard retry mode: bounded retries with backoff for every AWS call the functions make.
AWS_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"})
# The inference services' calls retry once in the client, no more: StartJob's Retry rule already backs off
# throttled submits for retry_time_window, and PollJob counts failed status calls towards UNREACHABLE. Eight
# standard-mode retries would add up to ~40 s of backoff to every throttled StartJob attempt, stretching
# the window the workflow computes (infra/workflow.py) several-fold and billing the Lambda for the waits.
INFERENCE_CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"})  # retries, not calls
INFERENCE_SERVICES = frozenset({"sagemaker", "bedrock"})
# Synth writes the deployed configs into the code asset, next to this package's modules (infra/code.py).
PIPELINES_PATH: Traversable = resources.files("osbatch").joinpath(DEPLOYED_PIPELINES_FILE)
# Beside it when a deployed pipeline chunks by all-MiniLM-L6-v2 tokens (infra/code.py copies it).
TOKENIZER_PATH: Traversable = resources.files("osbatch").joinpath(MINILM_TOKENIZER_FILE)


class SettingsError(RuntimeError):
    """A required environment variable or the pipelines file is missing: a deployment problem, named."""


class Settings(BaseModel):
    """The environment the function factory sets (docs/architecture.md); other variables are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_table: str = Field(alias="JOB_TABLE", min_length=1)
    output_bucket: str = Field(alias="OUTPUT_BUCKET", min_length=1)
    dead_letter_bucket: str = Field(alias="DEAD_LETTER_BUCKET", min_length=1)
    state_machine_arn: str = Field("", alias="STATE_MACHINE_ARN")
    opensearch_endpoint: str = Field("", alias="OPENSEARCH_ENDPOINT")
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")
    bedrock_role_arn: str = Field("", alias="BEDROCK_JOB_ROLE_ARN")
    region: str = Field("", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        try:
            return cls.model_validate(dict(env))
        except ValidationError as error:
            raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    # An empty value is as unusable as a missing one (a half-rendered template), so both read "not set".
    names = sorted({str(issue["loc"][0]) for issue in error.errors() if issue["loc"]})
    if len(names) == 1:
        return f"environment variable {names[0]} is not set; redeploy the stack"
    return f"environment variables {', '.join(names)} are not set; redeploy the stack"


def deployed_pipelines(path: Traversable) -> dict[str, PipelineConfig]:
    """The pipelines this code asset was synthesized with."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"{path} is missing: the function's code was not built by the osbatch stack (synth writes "
            "the pipeline configs into its code asset); redeploy the stack"
        ) from None
    return pipelines_from_json(text)


class Runtime:
    def __init__(self, settings: Settings, pipelines: Mapping[str, PipelineConfig]) -> None:
        self.settings = settings
        self.pipelines = dict(pipelines)
        self._session = boto3.session.Session(region_name=settings.region or None)

    def client(self, name: str) -> Any:
        return _client(self._session, name)

    def pipeline(self, name: str) -> PipelineConfig:
        try:
            return self.pipelines[name]
        except KeyError:
            raise SettingsError(f"pipeline '{name}' is not deployed in this stack") from None

    @cached_property
    def jobs(self) -> JobTable:
        return JobTable(self._session.resource("dynamodb", config=AWS_CONFIG).Table(self.settings.job_table))

    @cached_property
    def store(self) -> JobStore:
        """The job table and the stack's buckets: where every step reads and writes a job."""
        return JobStore(
            self.jobs, self.client("s3"), self.settings.output_bucket, self.settings.dead_letter_bucket
        )

    def deployed(self, config: PipelineConfig) -> DeployedPipeline:
        return DeployedPipeline(config, self.backend(config), self.opensearch(config), chunker_for(config))

    def sink_domain(self, config: PipelineConfig) -> SinkDomain:
        return SinkDomain(self.opensearch(config), self.domain_writers(config))

    @cached_property
    def wakeups(self) -> Wakeups:
        return Wakeups(self._session.resource("dynamodb", config=AWS_CONFIG).Table(self.settings.job_table))

    @cached_property
    def slot_wakeups(self) -> SlotWakeups:
        return SlotWakeups(
            self._session.resource("dynamodb", config=AWS_CONFIG).Table(self.settings.job_table)
        )

    def release_slot(self, config: PipelineConfig) -> SlotRelease:
        """Gives a job's slot back and wakes the oldest job waiting for one (PollJob, Finalize, FailJob)."""
        limit = config.inference.max_jobs_in_flight
        return SlotRelease(
            self.jobs, self.slot_wakeups, self.client("stepfunctions"), limit=limit, now=self.now
        )

    def domain_writers(self, config: PipelineConfig) -> DomainWriters:
        """The writer slots of the pipeline's domain, shared through the job table by every job."""
        endpoint = self.settings.opensearch_endpoint or config.sink.opensearch.endpoint or ""
        table = self._session.resource("dynamodb", config=AWS_CONFIG).Table(self.settings.job_table)
        bulk = config.sink.bulk
        return DomainWriters(
            table, endpoint, LimitSettings(initial=bulk.domain_writers, ceiling=bulk.domain_writers_max)
        )

    @cached_property
    def events(self) -> JobEvents:
        return JobEvents(self.client("events"), self.settings.event_bus_name)

    def backend(self, config: PipelineConfig) -> BatchBackend:
        return backend_for(
            config,
            self.client,
            bedrock_role_arn=self.settings.bedrock_role_arn,
            opensearch=lambda: self.opensearch(config),
        )

    def opensearch(self, config: PipelineConfig) -> Any:
        endpoint = self.settings.opensearch_endpoint or config.sink.opensearch.endpoint or ""
        return _opensearch(endpoint, self._session.region_name or "us-east-1")

    @staticmethod
    def now() -> float:
        return time.time()


def chunker_for(config: PipelineConfig, tokenizer: Traversable = TOKENIZER_PATH) -> Chunker | None:
    """The pipeline's Chunker (None when it does not chunk), counting with the tokenizer its config names."""
    if config.source.chunking is None:
        return None
    return Chunker(config.source.chunking, _counter(config.chunking_tokenizer, tokenizer))


def _counter(name: TokenizerName | None, tokenizer: Traversable) -> TokenCounter:
    if name is not TokenizerName.MINILM:
        return Utf8ByteEstimate()
    if not tokenizer.is_file():
        raise SettingsError(
            f"{tokenizer} is missing: a pipeline chunks by all-MiniLM-L6-v2 tokens and synth ships the "
            "model's tokenizer.json with the code; redeploy the stack"
        )
    with resources.as_file(tokenizer) as path:
        return _tokenizer_counter(str(path))


@lru_cache(maxsize=2)
def _tokenizer_counter(path: str) -> TokenizerJsonCounter:
    """Cached: loading tokenizer.json takes ~0.1 s and a counter is stateless, so pipelines share one."""
    return TokenizerJsonCounter.from_file(Path(path))


@lru_cache(maxsize=64)
def _client(session: boto3.session.Session, name: str) -> Any:
    config = INFERENCE_CLIENT_CONFIG if name in INFERENCE_SERVICES else AWS_CONFIG
    return session.client(name, config=config)  # type: ignore[call-overload]


@lru_cache(maxsize=8)
def _opensearch(endpoint: str, region: str) -> Any:
    return opensearch_client(endpoint, region)


@lru_cache(maxsize=8)
def _runtime(settings: Settings) -> Runtime:
    # Read once per settings value, at the first invocation: a missing or invalid file fails it at once.
    return Runtime(settings, deployed_pipelines(PIPELINES_PATH))


def runtime() -> Runtime:
    return _runtime(Settings.from_env(os.environ))


def opensearch_at(endpoint: str) -> Any:
    """A client for an endpoint given at run time (the provisioning resource's property), signed with this
    function's credentials for the region the endpoint names, else the function's own region."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    return _opensearch(endpoint, region)
