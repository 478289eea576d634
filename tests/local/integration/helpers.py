"""Helpers of the local runtime's own integration tests: the test emulator's settings, and the aws CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

TIME_SCALE = 0.01  # the test emulator's clock: a 60 s Wait state lasts 0.6 s
Aws = Callable[..., Any]  # aws("s3") or aws("lambda", config=...): a client of the test emulator


def aws_cli(endpoint_url: str, *arguments: str) -> str:
    """Run the aws CLI of this virtualenv against the emulator (with throwaway credentials); its stdout."""
    command = [
        str(Path(sys.executable).with_name("aws")),
        "--endpoint-url",
        endpoint_url,
        "--region",
        "us-east-1",
    ]
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [*command, *arguments], env=environment, capture_output=True, text=True, check=True
    ).stdout
