"""Fault injection for the batch emulators, so tests can make the services misbehave the way they do.

One process-wide settings object, read by the emulators at each call (a SageMaker transform job takes a copy
when it is created, as a Bedrock job does). Inside the moto server it is set over HTTP
(`POST /_osbatch/emulators/faults` with a JSON object of the fields below, `GET` to read); in-process tests
call `FAULTS.update(...)`. `reset()` restores the defaults.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from local.emulators.batching import MODEL_INPUTS
from local.emulators.jobs import PEAKS, reset_peaks
from local.emulators.transform_worker import WORKERS

# GET also returns `peaks` (jobs.PEAKS), what reached the model (batching.MODEL_INPUTS) and the transform
# jobs' model containers (transform_worker.WORKERS)
FAULTS_PATH = "/_osbatch/emulators/faults"


@dataclass
class Faults:
    # The next N job creations are refused as throttled (Bedrock: ThrottlingException).
    throttle_creates: int = 0
    # The next N status calls fail with a 500 (InternalServerException).
    fail_status_calls: int = 0
    # Records whose model text contains this string fail with a per-record error (None: none fail).
    fail_records_containing: str | None = None
    # Records whose model text contains this string are silently left out of the output: no result, no
    # error, as a service that loses records would (None: none are dropped).
    drop_records_containing: str | None = None
    # Jobs stay in progress until stopped (to test cancel and timeouts without racing the model).
    hold_jobs: bool = False
    # Bedrock jobs with a record containing this string stay in progress until the setting changes (or
    # they are stopped): a test sees what happens while one remote job of an upload is still running.
    hold_records_containing: str | None = None
    # The service's minimum records per job (Bedrock: 100); tests with small files lower it.
    min_records_per_job: int = 100
    # The service's maximum records per job (Bedrock: "Records per batch inference job", 50,000).
    max_records_per_job: int = 50_000
    # Jobs in progress per model before creation fails with a quota error (Bedrock default: 20).
    max_jobs_in_progress: int = 20
    # The Nth ingest-chunk checkpoint save (a DynamoDB PutItem with a `checkpoint` attribute) is held until
    # the faults are reset, then refused, never applied: the attempt making it hangs at a known point mid-
    # chunk until its Lambda timeout kills it (0: none). GET reports the offsets of the saves applied.
    hold_checkpoint_save: int = 0
    # SageMaker transform jobs stand still after this many model batches (0: never) until the faults are
    # reset, their model containers idle but alive: a test kills a container at a known point mid-job.
    # GET reports `transforms_held` and the containers' pids (`model_workers`, transform_worker.py).
    hold_transform_after_batches: int = 0


class FaultSettings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()
        self._released = threading.Event()
        self._checkpoint_saves = 0
        self.checkpoints: list[int] = []  # offsets of the checkpoint saves let through, in order
        self._transforms_held = 0

    def snapshot(self) -> Faults:
        with self._lock:
            return Faults(**asdict(self._faults))

    def update(self, **changes: Any) -> Faults:
        known = {field.name for field in fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        with self._lock:
            self._faults = Faults(**{**asdict(self._faults), **changes})
            return Faults(**asdict(self._faults))

    def reset(self) -> None:
        with self._lock:
            self._faults = Faults()
            self._released.set()  # a held save ends (refused) once the test is done with it
            self._released = threading.Event()
            self._checkpoint_saves = 0
            self.checkpoints = []
            self._transforms_held = 0

    @property
    def checkpoint_saves(self) -> int:
        """Checkpoint saves seen, the held one included: once it reaches hold_checkpoint_save, one is held."""
        with self._lock:
            return self._checkpoint_saves

    def hold_checkpoint(self, offset: int) -> threading.Event | None:
        """Count one checkpoint save: the event to wait on if this is the one to hold, else None."""
        with self._lock:
            self._checkpoint_saves += 1
            if self._checkpoint_saves == self._faults.hold_checkpoint_save:
                return self._released
            self.checkpoints.append(offset)
            return None

    @property
    def transforms_held(self) -> int:
        with self._lock:
            return self._transforms_held

    def hold_transform(self) -> None:
        """A transform job at its hold_transform_after_batches: stand still until the faults are reset."""
        with self._lock:
            self._transforms_held += 1
            released = self._released
        released.wait(HOLD_CAP_SECONDS)

    def take(self, name: str) -> bool:
        """Consume one of a counted fault (`throttle_creates`, `fail_status_calls`): True if one was left."""
        with self._lock:
            left = int(getattr(self._faults, name))
            if left <= 0:
                return False
            setattr(self._faults, name, left - 1)
            return True


FAULTS = FaultSettings()

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_fault_route(app: WsgiApp, faults: FaultSettings = FAULTS) -> WsgiApp:
    """Serve FAULTS_PATH in front of moto: GET reads the settings, POST changes them, DELETE resets."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != FAULTS_PATH:
            return app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        status = "200 OK"
        try:
            if method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                faults.update(**json.loads(environ["wsgi.input"].read(length) or b"{}"))
            elif method == "DELETE":
                faults.reset()
                reset_peaks()
                MODEL_INPUTS.reset()
            report = {
                "peaks": dict(PEAKS),
                "checkpoints": list(faults.checkpoints),
                "model_inputs": MODEL_INPUTS.count,
                "model_input_log": list(MODEL_INPUTS.latest),
                "checkpoint_saves": faults.checkpoint_saves,
                "transforms_held": faults.transforms_held,
                "model_workers": WORKERS.snapshot(),
            }
            body = json.dumps({**asdict(faults.snapshot()), **report}).encode()
        except (ValueError, TypeError) as error:
            status, body = "400 Bad Request", json.dumps({"error": str(error)}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wrapped


HOLD_CAP_SECONDS = 600.0  # a held save is refused after this even if no one resets the faults
HELD = b'{"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "held by a fault"}'


def with_checkpoint_hold(app: WsgiApp, faults: FaultSettings = FAULTS) -> WsgiApp:
    """Apply `hold_checkpoint_save` to DynamoDB PutItem requests in front of moto."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).endswith(".PutItem"):
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        offset = _checkpoint_offset(body)
        held = faults.hold_checkpoint(offset) if offset is not None else None
        if held is None:
            return app(environ, start_response)
        held.wait(HOLD_CAP_SECONDS)
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(HELD)))]
        start_response("500 Internal Server Error", headers)
        return [HELD]

    return wrapped


def _checkpoint_offset(body: bytes) -> int | None:
    try:
        item = json.loads(body).get("Item", {})
        return int(item["checkpoint"]["N"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
