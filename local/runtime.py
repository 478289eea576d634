"""The local runtime: a real OpenSearch node and the AWS emulator, started and stopped together.

`up` is idempotent (a running piece is left alone), `status` names each piece with where it runs and,
for one that crashed, where its log is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from local.aws import DEFAULT_PORT, emulator_process, endpoint_url
from local.model_server import DEFAULT_PORT as DEFAULT_MODEL_PORT
from local.model_server import model_server_process, server_url
from local.opensearch.node import OpenSearchNode
from local.paths import state_dir
from local.process import ManagedProcess, ProcessStatus

AWS_PORT = int(os.environ.get("OSBATCH_AWS_PORT", str(DEFAULT_PORT)))
AWS_URL = endpoint_url(AWS_PORT)
# Several runtimes can share a machine (one per worktree): each needs its own ports and OSBATCH_HOME.
OPENSEARCH_PORT = int(os.environ.get("OSBATCH_OPENSEARCH_PORT", "9200"))
MODEL_PORT = int(os.environ.get("OSBATCH_MODEL_PORT", str(DEFAULT_MODEL_PORT)))
MODEL_URL = server_url(MODEL_PORT)
# Wait states and retry delays run at this fraction of their real length, so a 60 s poll interval takes
# 0.6 s locally. The state machine definition itself is never rewritten.
TIME_SCALE = float(os.environ.get("OSBATCH_TIME_SCALE", "0.01"))

Progress = Callable[[str], None]


def aws_emulator() -> ManagedProcess:
    return emulator_process(
        AWS_PORT, TIME_SCALE, name="aws-emulator", env={**os.environ, "OSBATCH_HOME": str(state_dir())}
    )


@dataclass
class LocalRuntime:
    opensearch: OpenSearchNode
    aws: ManagedProcess
    models: ManagedProcess

    def up(self, progress: Progress = print) -> None:
        progress("starting the OpenSearch node (first run downloads it; later runs take ~30 s)")
        started = self.opensearch.start(progress=progress)
        progress(f"OpenSearch {'is up' if started else 'was already running'} at {self.opensearch.url}")
        started = self.aws.start(timeout=60)
        progress(f"AWS emulator {'is up' if started else 'was already running'} at {AWS_URL}")
        started = self.models.start(timeout=120)
        progress(f"model server {'is up' if started else 'was already running'} at {MODEL_URL}")

    def down(self, progress: Progress = print) -> None:
        pieces = (("model server", self.models.stop), ("AWS emulator", self.aws.stop))
        for name, stop in (*pieces, ("OpenSearch", self.opensearch.stop)):
            progress(f"{name}: {'stopped' if stop() else 'was not running'}")

    def status(self) -> list[ProcessStatus]:
        return [self.opensearch.status(), self.aws.status(), self.models.status()]

    def is_up(self) -> bool:
        return all(piece.running for piece in self.status())


def local_runtime() -> LocalRuntime:
    return LocalRuntime(OpenSearchNode(OPENSEARCH_PORT), aws_emulator(), model_server_process(MODEL_PORT))
