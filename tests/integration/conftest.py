"""Fixtures for the integration tests.

`runtime`: the whole local runtime (OpenSearch + AWS emulator on their ports), started once per session
and stopped only if we started it. `emulator` ... `aws`: one AWS emulator on a free port with the test
CDK app (tests/integration/stacks) deployed through its CloudFormation, shared by the emulator tests.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws import emulator_process, endpoint_url
from local.aws.cdk_deploy import DeployedStack, deploy_assembly
from local.runtime import LocalRuntime, local_runtime
from tests.integration.stacks.test_stack import SEARCH_ENDPOINT, STACK_NAME, synthesize

TIME_SCALE = 0.01
Aws = Callable[..., Any]  # aws("s3") or aws("lambda", config=...): a client of the test emulator


@pytest.fixture(scope="session")
def runtime() -> Iterator[LocalRuntime]:
    runtime = local_runtime()
    was_up = runtime.is_up()
    runtime.up()
    yield runtime
    if not was_up:
        runtime.down()  # a CI run must not leave servers behind


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OSBATCH_HOME", str(tmp_path_factory.mktemp("osbatch-home")))
        port = _free_port()
        process = emulator_process(port, TIME_SCALE, name=f"aws-test-{port}")
        process.start(timeout=60)
        try:
            yield endpoint_url(port)
        finally:
            process.stop()


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("cdk.out"), search_endpoint=SEARCH_ENDPOINT)


@pytest.fixture(scope="session")
def deployed(emulator: str, assembly: Path) -> DeployedStack:
    return deploy_assembly(assembly, STACK_NAME, endpoint_url=emulator, progress=print)


@pytest.fixture(scope="session")
def aws(emulator: str, deployed: DeployedStack) -> Aws:
    def client(service: str, **config: Any) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=emulator,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **config,
        )

    return client
