"""The one small interface every inference service implements (like Data Prepper's BatchJobCreator).

Adding a backend touches one module and the `Backend` enum in config.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from osbatch.models import JobStateName, RemoteJob


class BackendThrottled(Exception):
    """The service refused for now (throttling, quota, no free job slot). The workflow retries it
    with backoff for the pipeline's retry_time_window; the class name is matched by the Retry rule."""


class BackendUnavailable(Exception):
    """A status call failed. Counted by the poller; too many in a row make the job UNREACHABLE."""


@dataclass(frozen=True)
class BackendStatus:
    state: JobStateName
    reason: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputObject:
    bucket: str
    key: str
    size: int


@dataclass(frozen=True)
class InputLimits:
    """How prepared input is cut into files for this service."""

    max_records_per_file: int
    max_bytes_per_file: int


class BatchBackend(Protocol):
    limits: InputLimits

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        """The service's input line for one valid source record."""
        ...

    def submit(self, job_id: str, input_uri: str, output_uri: str) -> RemoteJob:
        """Start the remote job. Idempotent: submitting the same job id again returns the same job."""
        ...

    def status(self, remote: RemoteJob) -> BackendStatus: ...

    def cancel(self, remote: RemoteJob) -> None: ...

    def outputs(self, remote: RemoteJob) -> list[OutputObject]: ...
