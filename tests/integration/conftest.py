"""Fixtures of the integration tests, which run the test pipelines (tests/integration/pipelines) on the
local runtime (the `runtime` fixture, tests/conftest.py).

A module names its pipeline in `PIPELINE` (the `config` fixture), and in `FRESH` the pipelines whose
indices the `stack` fixture empties before its tests (default: its PIPELINE; none without one). Every
module deploys the same pipelines, so moving between modules never reshapes the stack. `clean_faults`
clears the emulators' faults (and peak counts) around each test of a module that sets them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.runtime import LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from tests.integration.helpers import deploy_stack, job_table, pipeline_configs, set_faults


@pytest.fixture(scope="module")
def configs() -> dict[str, PipelineConfig]:
    return pipeline_configs()


@pytest.fixture(scope="module")
def config(request: pytest.FixtureRequest, configs: dict[str, PipelineConfig]) -> PipelineConfig:
    return configs[request.module.PIPELINE]


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, runtime: LocalRuntime, configs: dict[str, PipelineConfig]) -> Any:
    pipeline = getattr(request.module, "PIPELINE", None)
    fresh = getattr(request.module, "FRESH", (pipeline,) if pipeline else ())
    return deploy_stack(runtime, *(configs[name].sink.index for name in fresh))


@pytest.fixture(scope="module")
def jobs(stack: Any) -> JobTable:
    return job_table(stack)


@pytest.fixture
def clean_faults(runtime: LocalRuntime) -> Iterator[None]:
    set_faults()
    yield
    set_faults()
