"""The sandbox's REPORT line: `Max Memory Used` is the function's own peak, not its parent's size."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from local.aws.sandbox import bootstrap

PARENT_HOLDS_MB = 400  # the emulator that starts sandboxes is several hundred MB
FUNCTION_ALLOCATES_MB = 64
HANDLER = f"""
def handler(event, context):
    block = b"\\x01" * ({FUNCTION_ALLOCATES_MB} * 1024 * 1024)  # filled, so every page is resident
    return len(block)
"""


def test_max_memory_used_is_the_functions_own_peak_not_its_parents(tmp_path: Path) -> None:
    # Given a parent holding 400 MB of resident memory, as the emulator does when it starts a sandbox,
    # and a function that allocates 64 MB
    ballast = b"\x01" * (PARENT_HOLDS_MB * 1024 * 1024)
    (tmp_path / "app.py").write_text(HANDLER)

    # When the sandbox runtime, started by that parent, serves one invocation
    report = _report_of_one_invocation(tmp_path)

    # Then the REPORT line counts the 64 MB and the interpreter, and none of the parent's 400 MB
    used = int(re.search(r"Max Memory Used: (\d+) MB", report).group(1))  # type: ignore[union-attr]
    assert FUNCTION_ALLOCATES_MB <= used < PARENT_HOLDS_MB, report
    assert len(ballast) == PARENT_HOLDS_MB * 1024 * 1024  # held until the sandbox has reported


def _report_of_one_invocation(code_dir: Path) -> str:
    ours, theirs = socket.socketpair()
    environment = {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
        "_HANDLER": "app.handler",
    }
    process = subprocess.Popen(
        [sys.executable, "-I", bootstrap.__file__, str(theirs.fileno()), str(code_dir)],
        env=environment,
        pass_fds=(theirs.fileno(),),
        stdout=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    try:
        assert bootstrap.recv_frame(ours) == {"ready": True}
        request = {
            "request_id": "r-1",
            "trace_id": "",
            "function_arn": "arn:fn",
            "event": {},
            "deadline_ms": 0,
        }
        bootstrap.send_frame(ours, request)
        response = bootstrap.recv_frame(ours)
        assert response == {"payload": FUNCTION_ALLOCATES_MB * 1024 * 1024, "function_error": None}
    finally:
        ours.close()  # the runtime ends when its channel closes
        stdout, _ = process.communicate()
    return next(line for line in stdout.splitlines() if line.startswith("REPORT"))
