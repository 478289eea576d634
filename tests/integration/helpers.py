"""Helpers shared by the integration tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float = 120.0, what: str = "condition") -> T:
    """Poll until `probe` returns something truthy. The timeout only stops a hung test; no assertion
    depends on how long anything took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


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
