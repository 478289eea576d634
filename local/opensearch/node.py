"""The local OpenSearch node: one ManagedProcess on 127.0.0.1, assembled from Maven Central on first use."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local.opensearch import djl
from local.opensearch.artifacts import OPENSEARCH_VERSION, PLUGINS
from local.opensearch.config import HEAP, node_settings, render_jvm_options, render_opensearch_yml
from local.opensearch.errors import SetupError
from local.opensearch.install import assemble, is_installed, opensearch_home
from local.opensearch.java import JavaRuntime, find_java
from local.paths import cache_dir, logs_dir, state_dir
from local.process import ManagedProcess, ProcessStatus

PROCESS_NAME = "opensearch"
# OpenSearch refuses to run as root. As root we start it in a user namespace where it is this uid: it sees a
# plain user, while its files stay root's outside, so the root-owned cache and state stay usable.
NAMESPACE_UID = 1000


class OpenSearchNode:
    def __init__(
        self, port: int = 9200, heap: str = "1g", extra_settings: Mapping[str, object] | None = None
    ) -> None:
        """extra_settings: static node settings added to opensearch.yml at start (the reliability scenarios'
        tiny write queue); a node started without them is back to the defaults."""
        if not HEAP.fullmatch(heap):
            raise ValueError(f"heap must look like 1g or 1536m, not {heap!r}")
        self.port = port
        self.heap = heap
        self.extra_settings = dict(extra_settings or {})
        self.url = f"http://127.0.0.1:{port}"
        self.home = opensearch_home(cache_dir())
        self._root = state_dir() / "opensearch"

    def install(self, progress: Callable[[str], None] = print) -> Path:
        """Download and assemble the distribution once; later calls return at once."""
        if is_installed(self.home):
            return self.home
        started = time.monotonic()
        home = assemble(self.home, java=find_java(), mvn=shutil.which("mvn"), progress=progress)
        progress(f"install took {time.monotonic() - started:.0f}s")
        return home

    def start(self, timeout: float = 240, progress: Callable[[str], None] = print) -> bool:
        """Start and wait until ready. Returns False when the node was already running."""
        ours = self._process().pid() is not None
        if ours and self.ready():
            return False
        home = self.install(progress)
        pytorch = djl.ensure_pytorch_natives(cache_dir(), shutil.which("mvn"), progress)
        java = find_java()
        if not ours:  # a node of ours still starting holds the port itself; ManagedProcess restarts it
            self._check_port_free()
        conf = self._write_config(home, java)
        progress(f"starting OpenSearch {OPENSEARCH_VERSION} on {self.url} (Java {java.version}: {java.home})")
        env = {**os.environ, "OPENSEARCH_JAVA_HOME": str(java.home), "OPENSEARCH_PATH_CONF": str(conf)}
        if pytorch is not None:
            env[djl.ENV_VAR] = str(pytorch)
        started = time.monotonic()
        self._process(self._argv(home), env).start(timeout)
        progress(f"OpenSearch ready in {time.monotonic() - started:.0f}s")
        return True

    def stop(self) -> bool:
        return self._process().stop()

    def status(self) -> ProcessStatus:
        return self._process().status()

    def ready(self) -> bool:
        """Cluster health yellow or green, and every plugin loaded."""
        try:
            health = self._get("/_cluster/health")
            plugins = {row["component"] for row in self._get("/_cat/plugins?format=json")}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return health.get("status") in ("yellow", "green") and {p.name for p in PLUGINS} <= plugins

    def _process(self, argv: Sequence[str] = (), env: dict[str, str] | None = None) -> ManagedProcess:
        # argv and env matter only to start(); stop() and status() go by the pid file.
        return ManagedProcess(
            PROCESS_NAME, argv, env=env, cwd=self._root, ready=self.ready, describe_ready=self.url
        )

    def _argv(self, home: Path) -> list[str]:
        command = [str(home / "bin" / "opensearch")]
        if os.geteuid() != 0:
            return command
        unshare = shutil.which("unshare")
        if unshare is None:
            raise SetupError(
                "OpenSearch refuses to run as root, and `unshare` (util-linux), which osbatch uses to start "
                "it as a plain user, is not on PATH. Install util-linux or run osbatch as a non-root user."
            )
        return [unshare, "--user", f"--map-user={NAMESPACE_UID}", f"--map-group={NAMESPACE_UID}", *command]

    def _check_port_free(self) -> None:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise SetupError(
                    f"port {self.port} is taken by a program that is not osbatch's OpenSearch node; "
                    "stop it, or start the node on another port."
                )

    def _write_config(self, home: Path, java: JavaRuntime) -> Path:
        """A config folder of our own, so the shared install stays untouched (the keystore lives here too)."""
        conf, data, logs = self._root / "config", self._root / "data", logs_dir() / "opensearch"
        for folder in (conf, data, logs):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(home / "config", conf, dirs_exist_ok=True)
        settings = {**node_settings(self.port, data, logs), **self.extra_settings}
        (conf / "opensearch.yml").write_text(render_opensearch_yml(settings))
        jvm_options = render_jvm_options(
            (home / "config" / "jvm.options").read_text(),
            heap=self.heap,
            logs_dir=logs,
            data_dir=data,
            modules=java.modules,
        )
        (conf / "jvm.options").write_text(jvm_options)
        return conf

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=2) as response:
            return json.load(response)
