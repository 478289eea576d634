"""The local runtime's process handling: idempotent start, clean stop, a crash reported with its log."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from local.process import ManagedProcess, StartupError
from tests.helpers import eventually


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSBATCH_HOME", str(tmp_path))


def sleeper(marker: Path, name: str = "sleeper") -> ManagedProcess:
    """A process that is 'ready' once it has written its marker file."""
    code = f"import pathlib, time; pathlib.Path({str(marker)!r}).write_text('up'); time.sleep(60)"
    return ManagedProcess(name, [sys.executable, "-c", code], ready=marker.exists, describe_ready="(test)")


def test_a_second_start_does_nothing(tmp_path: Path) -> None:
    # Given a started process
    process = sleeper(tmp_path / "ready")
    assert process.start(timeout=20) is True
    pid = process.pid()
    try:
        # When it is started again
        again = process.start(timeout=20)
        # Then nothing new starts
        assert (again, process.pid()) == (False, pid)
        assert process.status().running
    finally:
        process.stop()
    # And once stopped it reads as stopped, not crashed
    assert process.status().detail == "stopped"


def test_a_crashed_piece_is_named_with_its_log(tmp_path: Path) -> None:
    # Given a running process that then dies on its own
    marker = tmp_path / "ready"
    process = sleeper(marker, "opensearch-test")
    process.start(timeout=20)
    pid = process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # When its status is read (once the kernel has delivered the kill)
    status = eventually(
        lambda: None if (read := process.status()).running else read,
        timeout=10,
        interval=0.05,
        what="the process read as not running",
    )
    # Then it is reported as crashed, by name, with where its log is
    assert not status.running
    assert status.describe() == f"opensearch-test: crashed (log: {process.log_path})"


def test_a_process_that_exits_while_starting_points_at_its_log(tmp_path: Path) -> None:
    # Given a command that fails at once
    process = ManagedProcess(
        "broken",
        [sys.executable, "-c", "import sys; print('no java found'); sys.exit(3)"],
        ready=lambda: False,
    )
    # When it is started / Then the error names it, its exit code and its log, whose content explains
    with pytest.raises(StartupError, match=r"broken exited with code 3 while starting; see .*broken\.log"):
        process.start(timeout=20)
    assert "no java found" in process.log_path.read_text()


def test_a_process_that_never_gets_ready_is_stopped_after_the_timeout(tmp_path: Path) -> None:
    # Given a process that runs but never becomes ready
    process = ManagedProcess(
        "slow", [sys.executable, "-c", "import time; time.sleep(60)"], ready=lambda: False
    )
    # When it is started with a short timeout / Then it fails clearly and leaves nothing running
    with pytest.raises(StartupError, match=r"slow was not ready after 1s"):
        process.start(timeout=1)
    assert process.pid() is None
