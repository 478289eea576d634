"""The local model server: the models search-time examples call, over HTTP on 127.0.0.1.

The examples are those of OpenSearch's page "ML inference search response processor":
https://docs.opensearch.org/latest/search-plugins/search-pipelines/ml-inference-search-response/

    python -m local.model_server --port 8601

ML Commons connectors on the local node call it exactly as they would call SageMaker or Bedrock; see
local/model_server/app.py for the request and response shapes.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

from local.paths import REPO_ROOT
from local.process import ManagedProcess

DEFAULT_PORT = 8601
HEALTH_PATH = "/health"


def server_url(port: int = DEFAULT_PORT) -> str:
    return f"http://127.0.0.1:{port}"


def is_ready(url: str) -> bool:
    """True when an osbatch model server (not just any server) answers at `url`."""
    try:
        with urllib.request.urlopen(f"{url}{HEALTH_PATH}", timeout=2) as response:
            return bool(json.loads(response.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def model_server_process(port: int = DEFAULT_PORT, *, name: str = "model-server") -> ManagedProcess:
    url = server_url(port)
    return ManagedProcess(
        name,
        [sys.executable, "-m", "local.model_server", "--port", str(port)],
        env=dict(os.environ),
        cwd=REPO_ROOT,
        ready=lambda: is_ready(url),
        describe_ready=f"at {url} (text embedding, text similarity, extractive answers)",
    )
