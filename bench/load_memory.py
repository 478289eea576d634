"""A local function's peak memory over a run, from the REPORT lines its sandboxes wrote.

Each invocation ends with Lambda's REPORT line, `... Memory Size: 1024 MB	Max Memory Used: 113 MB`; the
local sandboxes compute Max Memory Used from the process's own VmHWM (local/aws/sandbox/bootstrap.py), and
write the line into the function's log file (local/aws/sandbox/logs.py). A sandbox killed past its memory
size leaves `Runtime exited with error: signal: killed (Max Memory Used: N MB)` instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.aws.sandbox.logs import log_file

REPORT = re.compile(
    r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tMemory Size: (\d+) MB\tMax Memory Used: (\d+) MB"
)
KILLED = re.compile(r"signal: killed \(Max Memory Used: (\d+) MB\)")


@dataclass(frozen=True)
class MemoryUse:
    function: str
    configured_mb: int
    invocations: int
    peak_mb: int
    killed: int  # sandboxes killed past their memory size

    @property
    def under_configured(self) -> bool:
        return self.invocations > 0 and self.killed == 0 and self.peak_mb < self.configured_mb


def function_named_by_handler(lambdas: Any, handler: str) -> dict[str, Any]:
    (function,) = [f for f in lambdas.list_functions()["Functions"] if f["Handler"] == handler]
    return dict(function)


class LogWindow:
    """The REPORT lines a function's sandboxes write from now on (its log file only grows)."""

    def __init__(self, function: str, configured_mb: int) -> None:
        self.function, self.configured_mb = function, configured_mb
        self.path: Path = log_file(function)
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def read(self) -> MemoryUse:
        text = ""
        if self.path.exists():
            with self.path.open("rb") as log:
                log.seek(self.start)
                text = log.read().decode("utf-8", errors="replace")
        used = [int(match.group(2)) for match in REPORT.finditer(text)]
        killed = [int(match.group(1)) for match in KILLED.finditer(text)]
        return MemoryUse(
            self.function, self.configured_mb, len(used), max(used + killed, default=0), len(killed)
        )
