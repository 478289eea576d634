"""Scenario d's fault: an ingest-chunk sandbox killed by a signal mid-chunk.

The AWS emulator's `hold_checkpoint_save` fault (local/emulators/faults.py) holds one checkpoint save, so
the attempt making it stands still at a known point mid-chunk; then every ingest-chunk sandbox process
(local/aws/sandbox: one Python process per sandbox, in its own process group, its handler in `_HANDLER`)
gets SIGKILL. The local Lambda runtime reports Runtime.ExitError, as Lambda does for a runtime that exits,
and the Map's retrier runs the chunk again from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

from local.emulators.faults import FAULTS_PATH
from local.paths import state_dir
from local.runtime import AWS_URL

INGEST_HANDLER = b"_HANDLER=osbatch.handlers.ingest_chunk.handler"


def set_faults(**faults: Any) -> dict[str, Any]:
    """POST the emulator's fault settings (none: DELETE, which resets them and releases a held save)."""
    method = "POST" if faults else "DELETE"
    request = urllib.request.Request(
        f"{AWS_URL}{FAULTS_PATH}", data=json.dumps(faults).encode(), method=method
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def faults() -> dict[str, Any]:
    with urllib.request.urlopen(f"{AWS_URL}{FAULTS_PATH}", timeout=10) as response:
        return dict(json.loads(response.read()))


def ingest_sandboxes() -> list[int]:
    """The pids of this runtime's ingest-chunk sandboxes: the handler in their environment, and their
    working directory in this runtime's state (local/aws/sandbox/sandbox.py `extract_code`), so no other
    runtime's process is ever touched."""
    home = str(state_dir() / "lambda-code")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ours = os.readlink(proc / "cwd").startswith(home)
            if ours and INGEST_HANDLER in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or not readable
    return pids


def kill_ingest_sandboxes() -> int:
    """SIGKILL each ingest-chunk sandbox's process group; how many were killed."""
    killed = 0
    for pid in ingest_sandboxes():
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            continue
    return killed
