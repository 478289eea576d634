"""Not collected on its own (no test_ prefix): test_runtime_reuse.py runs it as a pytest session of its
own, in the environment of a runtime that is already up, the way `make test` runs after `make demo`.

The emulator tests' own emulator starts first, in its own state folder, as it does in a full run; then a
test takes the session's `runtime` fixture, which must find and use the runtime already up.
"""

from __future__ import annotations

import os

import pytest

from local.aws import is_ready
from local.runtime import LocalRuntime

pytestmark = pytest.mark.integration


def test_the_emulator_tests_start_their_own_emulator_first(emulator: str) -> None:
    assert is_ready(emulator)


def test_the_runtime_fixture_gives_the_runtime_that_is_up(runtime: LocalRuntime) -> None:
    assert runtime.is_up()
    assert runtime.opensearch.url.endswith(f":{os.environ['OSBATCH_OPENSEARCH_PORT']}")
