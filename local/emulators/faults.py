"""Fault injection for the batch emulators, so tests can make the services misbehave the way they do.

One process-wide settings object, read by the Bedrock emulator at each call. Inside the moto server it is
set over HTTP (`POST /_osbatch/emulators/faults` with a JSON object of the fields below, `GET` to read);
in-process tests call `FAULTS.update(...)`. `reset()` restores the defaults.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from local.emulators.jobs import PEAKS, reset_peaks

FAULTS_PATH = "/_osbatch/emulators/faults"  # GET also returns `peaks` (jobs.PEAKS)


@dataclass
class Faults:
    # The next N job creations are refused as throttled (Bedrock: ThrottlingException).
    throttle_creates: int = 0
    # The next N status calls fail with a 500 (InternalServerException).
    fail_status_calls: int = 0
    # Records whose model text contains this string fail with a per-record error (None: none fail).
    fail_records_containing: str | None = None
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


class FaultSettings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()

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
            body = json.dumps({**asdict(faults.snapshot()), "peaks": dict(PEAKS)}).encode()
        except (ValueError, TypeError) as error:
            status, body = "400 Bad Request", json.dumps({"error": str(error)}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return wrapped
