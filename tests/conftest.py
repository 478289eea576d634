"""Shared test setup: AWS calls never leave the process unless a test starts the local runtime.

Fixtures for every suite: `runtime`, the local runtime the integration tests share (started once per session,
stopped only if started here: tests/helpers.py shared_runtime), `minilm`, the local embedding model, and
`openai_api` and `emulators`, the OpenAI Batch API emulator and the SageMaker and Bedrock ones in this
process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

# Set before any boto3 client exists, so nothing can reach a real account by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "osbatch")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "osbatch-tests")

# CDK synthesizes in-process in the infra suite: its jsii kernel runs on the pinned Node, as app.py's does.
from infra.jsii_node import use_pinned_node

use_pinned_node()

if TYPE_CHECKING:
    from local.model import Embedder
    from local.runtime import LocalRuntime


# The fixtures import local/ when used: a suite that needs neither never loads the runtime's modules.
@pytest.fixture(scope="session")
def runtime() -> Iterator[LocalRuntime]:
    from local.runtime import local_runtime
    from tests.helpers import shared_runtime

    with shared_runtime(local_runtime()) as running:
        yield running


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    from local.model import load_embedder

    return load_embedder()


@pytest.fixture
def openai_api(minilm: Embedder) -> Iterator[str]:
    """The OpenAI Batch API emulator on a free port, accepting OPENAI_TEST_KEY, with no faults set."""
    from local.emulators.faults import FAULTS
    from local.emulators.openai_server import BatchStore, serve
    from tests.helpers import OPENAI_TEST_KEY

    FAULTS.reset()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = serve(port, BatchStore(lambda: minilm), lambda: OPENAI_TEST_KEY)
    yield f"http://127.0.0.1:{port}/v1"
    server.shutdown()
    FAULTS.reset()


@pytest.fixture
def emulators(minilm: Embedder) -> Iterator[None]:
    """The SageMaker and Bedrock emulators installed into moto (local.emulators), embedding with `minilm`,
    with no faults set; plain moto again afterwards, as other test modules expect."""
    import local.emulators
    from local.emulators.faults import FAULTS

    local.emulators.install(embedder_loader=lambda _folder: minilm)
    FAULTS.reset()
    yield
    FAULTS.reset()
    local.emulators.uninstall()
