"""The composition root: the only Lambda code that reads the environment or builds clients.

Clients are cached per Settings value rather than at import time. In Lambda that is the usual
warm-start reuse; in the local runtime, where several functions share one process with different
environments, it keeps each function on its own configuration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import boto3
from botocore.config import Config

from osbatch.backends import backend_for
from osbatch.backends.base import BatchBackend
from osbatch.config import PipelineConfig, pipelines_from_json
from osbatch.events import JobEvents
from osbatch.jobs import JobTable
from osbatch.search.client import opensearch_client

# Standard retry mode: bounded retries with backoff for every AWS call the functions make.
AWS_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"})


class SettingsError(RuntimeError):
    """A required environment variable is missing: a deployment problem, named precisely."""


@dataclass(frozen=True)
class Settings:
    pipelines_json: str
    job_table: str
    input_bucket: str
    output_bucket: str
    dead_letter_bucket: str
    state_machine_arn: str = ""
    opensearch_endpoint: str = ""
    event_bus_name: str = "default"
    region: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name)
            if not value:
                raise SettingsError(f"environment variable {name} is not set; redeploy the stack")
            return value

        return cls(
            pipelines_json=required("OSBATCH_PIPELINES"),
            job_table=required("JOB_TABLE"),
            input_bucket=required("INPUT_BUCKET"),
            output_bucket=required("OUTPUT_BUCKET"),
            dead_letter_bucket=required("DEAD_LETTER_BUCKET"),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            opensearch_endpoint=env.get("OPENSEARCH_ENDPOINT", ""),
            event_bus_name=env.get("EVENT_BUS_NAME", "default"),
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "")),
        )


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session = boto3.session.Session(region_name=settings.region or None)

    def client(self, name: str) -> Any:
        return _client(self._session, name)

    @cached_property
    def pipelines(self) -> dict[str, PipelineConfig]:
        return pipelines_from_json(self.settings.pipelines_json)

    def pipeline(self, name: str) -> PipelineConfig:
        try:
            return self.pipelines[name]
        except KeyError:
            raise SettingsError(f"pipeline '{name}' is not deployed in this stack") from None

    @cached_property
    def jobs(self) -> JobTable:
        return JobTable(self._session.resource("dynamodb", config=AWS_CONFIG).Table(self.settings.job_table))

    @cached_property
    def events(self) -> JobEvents:
        return JobEvents(self.client("events"), self.settings.event_bus_name)

    def backend(self, config: PipelineConfig) -> BatchBackend:
        return backend_for(config, self.client)

    def opensearch(self, config: PipelineConfig) -> Any:
        endpoint = self.settings.opensearch_endpoint or config.sink.opensearch.endpoint or ""
        return _opensearch(endpoint, self._session.region_name or "us-east-1")

    @staticmethod
    def now() -> float:
        return time.time()


@lru_cache(maxsize=64)
def _client(session: boto3.session.Session, name: str) -> Any:
    return session.client(name, config=AWS_CONFIG)  # type: ignore[call-overload]


@lru_cache(maxsize=8)
def _opensearch(endpoint: str, region: str) -> Any:
    return opensearch_client(endpoint, region)


@lru_cache(maxsize=8)
def _runtime(settings: Settings) -> Runtime:
    return Runtime(settings)


def runtime() -> Runtime:
    return _runtime(Settings.from_env(os.environ))
