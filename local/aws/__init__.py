"""Local AWS for osbatch: a moto server (127.0.0.1:4599 by default) that runs Lambda invocations in sandbox
processes, really executes Step Functions, and deploys `cdk synth` output through its CloudFormation.

    python -m local.aws.server --port 4599 --time-scale 0.01      # see local/aws/server.py
    emulator_process(port, time_scale).start(timeout=60)            # the same, as a ManagedProcess
    deploy_assembly(Path("cdk.out"), "osbatch", endpoint_url=endpoint_url(port))  # local.aws.cdk_deploy
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import boto3

from local.paths import REPO_ROOT
from local.process import ManagedProcess

DEFAULT_PORT = 4599
HEALTH_PATH = "/_osbatch/health"


def endpoint_url(port: int = DEFAULT_PORT) -> str:
    return f"http://127.0.0.1:{port}"


REGION = "us-east-1"


def session(region: str = REGION) -> boto3.session.Session:
    """A session for the emulator: it accepts any credentials, and these can never reach a real account."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def is_ready(url: str) -> bool:
    """True when an osbatch emulator (not just any server) answers at `url`."""
    try:
        with urllib.request.urlopen(f"{url}{HEALTH_PATH}", timeout=2) as response:
            return bool(json.loads(response.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def emulator_process(
    port: int = DEFAULT_PORT,
    time_scale: float = 1.0,
    *,
    name: str = "aws",
    env: dict[str, str] | None = None,
    node_facing: bool = False,
    home: Path | None = None,
) -> ManagedProcess:
    """node_facing: also listen where ML Commons' batch calls reach it (local/emulators/node_facing.py).
    home: the emulator's own state folder (its pid file, logs and sandboxes), given to it as OSBATCH_HOME,
    so a caller can run one beside the runtime without changing its own environment."""
    url = endpoint_url(port)
    command = [sys.executable, "-m", "local.aws.server", "--port", str(port), "--time-scale", str(time_scale)]
    if home is not None:
        env = {**(os.environ if env is None else env), "OSBATCH_HOME": str(home)}
    return ManagedProcess(
        name,
        [*command, *(["--node-facing"] if node_facing else [])],
        env=env,
        cwd=REPO_ROOT,
        ready=lambda: is_ready(url),
        describe_ready=f"at {url} (time scale {time_scale})",
        home=home,
    )
