"""Background processes of the local runtime: started detached, tracked by pid file, logged to a file.

Each piece (the OpenSearch node, the AWS emulator) is one ManagedProcess, so `up`, `down` and `status`
treat them alike: a second start is a no-op, and a crashed piece is reported with its log path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from local.paths import logs_dir, run_dir


class StartupError(RuntimeError):
    """A piece did not become ready. The message names it and points at its log."""


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    running: bool
    pid: int | None
    log_path: Path
    detail: str

    def describe(self) -> str:
        if self.running:
            return f"{self.name}: running (pid {self.pid}) {self.detail}".rstrip()
        return f"{self.name}: {self.detail or 'stopped'} (log: {self.log_path})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it so it reads as dead.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool],
        describe_ready: str = "",
        home: Path | None = None,
    ) -> None:
        """home: the state folder its log and pid file go in (the process's own OSBATCH_HOME is up to
        `env`); state_dir() when none is given."""
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready = ready
        self.describe_ready = describe_ready
        self.log_path = logs_dir(home) / f"{name}.log"
        self.pid_path = run_dir(home) / f"{name}.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def status(self) -> ProcessStatus:
        pid = self.pid()
        if pid is None:
            crashed = self.pid_path.exists()
            return ProcessStatus(self.name, False, None, self.log_path, "crashed" if crashed else "stopped")
        if not self._ready_quietly():
            return ProcessStatus(self.name, True, pid, self.log_path, "(starting or not answering)")
        return ProcessStatus(self.name, True, pid, self.log_path, self.describe_ready)

    def _ready_quietly(self) -> bool:
        try:
            return self.ready()
        except Exception:
            return False

    def start(self, timeout: float) -> bool:
        """Start unless already running; wait until ready. Returns False when it was already running."""
        if self.pid() is not None and self._ready_quietly():
            return False
        if self.pid() is not None:
            self.stop()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # survives the CLI that started it; `down` stops the whole group
            )
        self.pid_path.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StartupError(
                    f"{self.name} exited with code {process.returncode} while starting; see {self.log_path}"
                )
            if self._ready_quietly():
                return True
            time.sleep(0.5)
        self.stop()
        raise StartupError(f"{self.name} was not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self, grace: float = 20.0) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        return True
