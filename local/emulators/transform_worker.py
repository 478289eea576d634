"""A transform job's model container: a process of its own that the job sends its batches to.

SageMaker Batch Transform runs the model in a container on the job's instances and sends it the records
over HTTP (`/invocations`); the service's own agent reads the input and writes the output ("How Batch
Transform works", https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html). Here the job's
thread in the AWS emulator is the agent and a ModelWorker is the container, so a container can die for real
(killed by a signal, out of memory) in the middle of a job, and the job ends the way SageMaker ends one whose
container stops answering: Failed, with an `AlgorithmError` FailureReason (DescribeTransformJob,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTransformJob.html; the service's job
log says "Unable to get response from algorithm"), the output objects it had finished kept, no others.

Workers start from a forkserver that has imported the model code once (numpy, onnxruntime, tokenizers), so
a job's container starts in a fraction of a second without forking the multi-threaded emulator itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from local.model import Embedder

EmbedderLoader = Callable[[str | None], Embedder]
START_SECONDS = 120.0  # a container that has not loaded its model by then is taken for dead
STOP_SECONDS = 5.0

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["local.emulators.transform_worker", "local.model"])


class WorkerDied(Exception):
    """The container stopped answering: it exited or was killed. `detail` says how, for the job's reason."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class WorkerRegistry:
    """The running containers by job, so a fault can find the process to kill (faults.py reports it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: dict[str, int] = {}

    def add(self, job: str, pid: int) -> None:
        with self._lock:
            self._pids[job] = pid

    def remove(self, job: str) -> None:
        with self._lock:
            self._pids.pop(job, None)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._pids)


WORKERS = WorkerRegistry()


class ModelWorker:
    """An Embedder whose model runs in a child process; close() ends it."""

    def __init__(self, job: str, load_embedder: EmbedderLoader, model_dir: str | None) -> None:
        """Starts the container and waits for its model; a model that fails to load raises its error."""
        self._job = job
        self._connection, child = _context.Pipe()
        self._process = _context.Process(
            target=_serve, args=(child, load_embedder, model_dir), name=f"model-{job}", daemon=True
        )
        self._process.start()
        child.close()  # only the child holds its end: its death is then an EOF here
        WORKERS.add(job, self.pid)
        try:
            kind, value = self._receive(timeout=START_SECONDS)
        except BaseException:
            self.close()
            raise
        if kind == "error":
            self.close()
            raise RuntimeError(value)
        self.dimension = int(value)

    @property
    def pid(self) -> int:
        assert self._process.pid is not None, "started in __init__"
        return self._process.pid

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        try:
            self._connection.send(list(texts))
        except OSError as error:  # BrokenPipeError: the container is gone
            raise WorkerDied(self._how_it_ended(error)) from error
        kind, value = self._receive()
        if kind == "error":
            raise RuntimeError(value)
        return np.asarray(value, dtype=np.float32)

    def close(self) -> None:
        WORKERS.remove(self._job)
        with contextlib.suppress(OSError):  # a dead container needs no goodbye
            self._connection.send(None)
        self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(STOP_SECONDS)
        self._connection.close()

    def _receive(self, timeout: float | None = None) -> tuple[str, Any]:
        try:
            if timeout is not None and not self._connection.poll(timeout):
                raise WorkerDied(f"the model container (pid {self.pid}) did not start within {timeout:.0f} s")
            kind, value = self._connection.recv()
        except (EOFError, OSError) as error:
            raise WorkerDied(self._how_it_ended(error)) from error
        return str(kind), value

    def _how_it_ended(self, error: BaseException) -> str:
        self._process.join(STOP_SECONDS)
        code = self._process.exitcode
        if code is not None and code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        elif code is not None:
            how = f"exited with code {code}"
        else:
            how = f"stopped answering ({type(error).__name__})"
        return f"the model container (pid {self.pid}) {how}"


def _serve(connection: Connection, load_embedder: EmbedderLoader, model_dir: str | None) -> None:
    """The container's loop: load the model, then one batch of texts in, its vectors out, until None."""
    try:
        embedder = load_embedder(model_dir)
    except Exception as error:
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return
    connection.send(("ready", embedder.dimension))
    while True:
        texts = connection.recv()
        if texts is None:
            return
        try:
            connection.send(("vectors", embedder.embed(texts)))
        except Exception as error:  # the model's own fault, reported like the in-process model's
            connection.send(("error", f"{type(error).__name__}: {error}"))
