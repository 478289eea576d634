"""`make demo` then `make test`: the tests use the runtime the demo left up, as it is, and leave it up.

They must never look for it in another home (an emulator fixture once set OSBATCH_HOME for the whole
session, and the `runtime` fixture then took the demo's node for a stranger on its port), nor start a
second runtime beside it, nor stop it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.paths import REPO_ROOT, run_dir

pytestmark = pytest.mark.integration
PROBE = Path(__file__).with_name("runtime_probe.py")
OSBATCH = [sys.executable, "-m", "cli.main"]
# The runtime's ports (local/runtime.py); the node's transport port is its HTTP port + 100.
PORTS = ("OSBATCH_OPENSEARCH_PORT", "OSBATCH_AWS_PORT", "OSBATCH_MODEL_PORT", "OSBATCH_OPENAI_PORT")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 100 < 65536 and _is_free(port + 100):
            return port


def _pids(home: Path) -> dict[str, int]:
    """The runtime's pieces by name, as its pid files say."""
    return {path.stem: int(path.read_text()) for path in sorted(run_dir(home).glob("*.pid"))}


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@pytest.fixture
def demo_left_up(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A runtime started as the demo starts it (`local_runtime().up()`, here through `osbatch up`, in a
    process of its own) and left up. It gets a home and ports of its own, so it stands beside any runtime
    this session uses; that environment is the demo's, as the repo's .osbatch/ and default ports are
    for `make demo` and `make test` alike. Stopped afterwards."""
    environment = {**os.environ, "OSBATCH_HOME": str(tmp_path / "demo-home")}
    environment.update({name: str(_free_port()) for name in PORTS})
    try:
        subprocess.run([*OSBATCH, "up"], env=environment, cwd=REPO_ROOT, check=True, timeout=900)
        yield environment
    finally:
        subprocess.run([*OSBATCH, "down"], env=environment, cwd=REPO_ROOT, check=False, timeout=300)


def test_a_test_session_uses_the_runtime_the_demo_left_up_and_leaves_it_up(
    demo_left_up: dict[str, str], tmp_path: Path
) -> None:
    # Given a runtime the demo left up, and its pieces' processes
    home = Path(demo_left_up["OSBATCH_HOME"])
    before = _pids(home)
    assert len(before) == 4 and all(_alive(pid) for pid in before.values())

    # When a test session runs in the same environment: the emulator tests' emulator first, in its own
    # state folder, then a test on the `runtime` fixture
    session = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(PROBE),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'probe'}",
        ],
        env=demo_left_up,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )

    # Then both tests passed: the fixture took the running runtime for its own
    assert session.returncode == 0, session.stdout + session.stderr
    assert "2 passed" in session.stdout
    # And the runtime is still up, every piece the same process: nothing was restarted, nothing stopped
    assert _pids(home) == before
    assert all(_alive(pid) for pid in before.values())
