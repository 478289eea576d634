"""The local runtime for integration tests: started once per session, stopped only if we started it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.runtime import LocalRuntime, local_runtime


@pytest.fixture(scope="session")
def runtime() -> Iterator[LocalRuntime]:
    runtime = local_runtime()
    was_up = runtime.is_up()
    runtime.up()
    yield runtime
    if not was_up:
        runtime.down()  # a CI run must not leave servers behind
