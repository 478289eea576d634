"""Where a sandbox's output goes: the function's log group in the emulator and .osbatch/logs/lambda/.

Lambda writes one log stream per execution environment, named `YYYY/MM/DD/[$LATEST]<id>`, into the
function's log group (its LoggingConfig, else /aws/lambda/<name>). `aws logs tail` reads it back.
Lines in the embedded metric format also become CloudWatch metrics (local/aws/metrics.py), as on AWS.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import IO

from moto.logs.exceptions import ResourceAlreadyExistsException
from moto.logs.models import logs_backends

from local.aws import metrics
from local.aws.sandbox.spec import FunctionSpec
from local.paths import logs_dir

_file_locks: dict[Path, threading.Lock] = {}
_registry_lock = threading.Lock()


def log_file(function_name: str, home: Path | None = None) -> Path:
    """The function's log file in the state folder `home` (state_dir() when none is given)."""
    return logs_dir(home) / "lambda" / f"{function_name}.log"


class LogStream:
    def __init__(self, spec: FunctionSpec, stream_name: str) -> None:
        self.group, self.stream = spec.log_group, stream_name
        self._backend = logs_backends[spec.account_id][spec.region]
        self._account, self._region = spec.account_id, spec.region
        self._path = log_file(spec.name)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with _registry_lock:
            self._file_lock = _file_locks.setdefault(self._path, threading.Lock())
        if self.group not in self._backend.groups:
            # another sandbox of the function may win the race
            with contextlib.suppress(ResourceAlreadyExistsException):
                self._backend.create_log_group(self.group, tags={})
        self._backend.create_log_stream(self.group, self.stream)

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        with self._file_lock, self._path.open("a", encoding="utf-8") as out:
            out.write(f"{self.stream} {line}\n")
        event = {"timestamp": int(time.time() * 1000), "message": line}
        self._backend.put_log_events(self.group, self.stream, [event])
        metrics.publish_emf(line, self._account, self._region)  # as CloudWatch Logs extracts EMF

    def forward(self, source: IO[bytes]) -> None:
        """Copy every line of `source` (the sandbox's stdout and stderr) until it closes."""
        for raw in iter(source.readline, b""):
            self.write(raw.decode("utf-8", errors="replace"))
