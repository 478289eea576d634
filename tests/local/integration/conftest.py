"""Fixtures of the local runtime's own integration tests.

`emulator` ... `aws`: one AWS emulator on a free port with its own state folder (`emulator_home`), and the
test CDK app (stacks/stack_app.py) deployed through its CloudFormation, shared by the emulator tests. The
folder goes to the emulator process alone: this process keeps its OSBATCH_HOME, so the `runtime` fixture
(tests/conftest.py) still finds the runtime `osbatch up` or the demo started.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws import emulator_process, endpoint_url
from local.aws.cdk_deploy import DeployedStack, deploy_assembly
from tests.local.integration.helpers import TIME_SCALE, Aws
from tests.local.integration.stacks.stack_app import SEARCH_ENDPOINT, STACK_NAME, synthesize


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def emulator_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("osbatch-home")


@pytest.fixture(scope="session")
def emulator(emulator_home: Path) -> Iterator[str]:
    port = _free_port()
    process = emulator_process(port, TIME_SCALE, name=f"aws-test-{port}", home=emulator_home)
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
