"""The node's opensearch.yml and jvm.options, rendered at every start so changes apply."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

CLUSTER_NAME = "osbatch-local"
HEAP = re.compile(r"\d+[mMgG]")

# ML Commons only calls connector endpoints that match one of these; the local model servers listen here.
TRUSTED_CONNECTOR_ENDPOINTS = [r"^http://127\.0\.0\.1.*", r"^http://localhost.*"]


def trusted_connector_endpoints() -> list[str]:
    """Plus the AWS emulator's node-facing address, where the ml-commons backend's batch connector calls it
    (local/emulators/node_facing.py says why 127.0.0.1 cannot serve those calls)."""
    from local.emulators.node_facing import node_facing_host, url_host

    host = node_facing_host()
    extra = [f"^http://{re.escape(url_host(host))}:.*"] if host else []
    return [*TRUSTED_CONNECTOR_ENDPOINTS, *extra]


def node_settings(port: int, data_dir: Path, logs_dir: Path) -> dict[str, object]:
    return {
        "cluster.name": CLUSTER_NAME,
        "node.name": CLUSTER_NAME,
        "network.host": "127.0.0.1",  # loopback only; this also keeps OpenSearch's bootstrap checks advisory
        "http.port": port,
        "transport.port": port + 100,
        "discovery.type": "single-node",
        "path.data": str(data_dir),
        "path.logs": str(logs_dir),
        # A developer disk is often fuller than a server's; the watermarks would make every index read-only.
        "cluster.routing.allocation.disk.threshold_enabled": False,
        "plugins.ml_commons.only_run_on_ml_node": False,  # the one node is a data node, not an ML node
        "plugins.ml_commons.trusted_connector_endpoints_regex": trusted_connector_endpoints(),
        "plugins.ml_commons.connector.private_ip_enabled": True,  # 127.0.0.1 counts as a private address
        # Local ONNX models are registered from a file:// zip (no model hub offline); its hash is checked.
        "plugins.ml_commons.allow_registering_model_via_url": True,
        # ML Commons' circuit breakers refuse work above these; a 1-2 GB heap on a small machine trips them.
        "plugins.ml_commons.native_memory_threshold": 100,
        "plugins.ml_commons.jvm_heap_memory_threshold": 100,
        "plugins.ml_commons.disk_free_space_threshold": "0b",
    }


def render_opensearch_yml(settings: Mapping[str, object]) -> str:
    # JSON values are valid YAML, and json.dumps quotes and escapes the regexes correctly.
    lines = ["# Written by osbatch at every start (local/opensearch/config.py); edits here are overwritten."]
    lines += [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_jvm_options(
    distribution: str, *, heap: str, logs_dir: Path, data_dir: Path, modules: frozenset[str]
) -> str:
    """The distribution's jvm.options, adapted to this machine.

    Relative paths in it resolve against the install, which is a shared read-only cache, so they move into the
    node's own folders. `--add-modules` lines name modules a trimmed runtime may lack, and the JVM refuses to
    start on an unknown module.
    """
    if not HEAP.fullmatch(heap):
        raise ValueError(f"heap must look like 1g or 1536m, not {heap!r}")
    kept: list[str] = []
    for line in distribution.splitlines():
        option = re.sub(r"^\d+-?\d*:", "", line.strip())  # drop a JDK-version prefix such as "20-:"
        if option.startswith(("-Xms", "-Xmx")):
            continue
        if option.startswith("--add-modules=") and not set(option.split("=", 1)[1].split(",")) <= modules:
            continue
        line = line.replace("=logs/", f"={logs_dir}/")
        line = re.sub(r"-XX:HeapDumpPath=data$", f"-XX:HeapDumpPath={data_dir}", line)
        kept.append(line)
    kept += [f"-Xms{heap}", f"-Xmx{heap}"]
    return "\n".join(kept) + "\n"
