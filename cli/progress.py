"""What a running job has done so far, phase by phase: the numbers `osbatch watch` and the demo show.

Phases (records): prepared (valid records Prepare cut into parts), embedded (through the model), indexed
and dead-lettered. Sources, each read only:
- the job item (state, records_in, valid, remote jobs) and its chunk items, running chunks' checkpoints
  included, so indexed moves during ingest (osbatch.dal.chunks: `live_counts`);
- Prepare's parts list (contracts.job_parts_key): the records each remote job was sent;
- the service's own counts while a remote job runs, where it reports them (`RemoteCounter`): Bedrock's
  record counts in GetModelInvocationJob, OpenAI's batch `request_counts`. SageMaker transform jobs report
  none: their bar shows the elapsed time, and the job's records count once the remote job has ended.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from osbatch.contracts import job_parts_key
from osbatch.models import JobStateName

# The job states after inference: every remote job has ended and its output is (being) ingested.
AFTER_INFERENCE = frozenset({JobStateName.INGESTING.value, JobStateName.COMPLETED.value})


@dataclass(frozen=True)
class RemoteCounts:
    """A service's own count of one remote job's records: processed (succeeded or failed) and failed."""

    processed: int
    failed: int = 0
    total: int | None = None


@dataclass(frozen=True)
class RemoteProgress:
    name: str
    records: int | None  # sent to it (Prepare's parts list); None before the list is read
    processed: int | None  # per the service; None where it reports nothing
    failed: int | None


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    state: str
    records_in: int | None
    prepared: int
    embedded: int | None
    indexed: int
    dead_lettered: int
    chunks_done: int
    chunks: int | None
    remote_status: str | None
    remote_jobs_done: int
    remotes: list[RemoteProgress] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    # The plan's wall-time estimate Prepare recorded (planning.estimate): what a SageMaker job's elapsed time,
    # the only progress that service gives, is shown against. None where no estimate was recorded.
    estimated_seconds: float | None = None

    @property
    def terminal(self) -> bool:
        return JobStateName(self.state).terminal

    def as_json(self) -> str:
        return json.dumps({"type": "progress", **asdict(self)}, sort_keys=False)


def _int(value: Any) -> int:
    return int(value or 0)


def _estimated_seconds(job: Mapping[str, Any]) -> float | None:
    estimate = job.get("estimate")
    if isinstance(estimate, str):
        try:
            estimate = json.loads(estimate)
        except ValueError:
            return None
    seconds = estimate.get("wall_seconds") if isinstance(estimate, dict) else None
    return float(seconds) if isinstance(seconds, int | float) else None


def _seconds_since(created: Any, now: datetime) -> float:
    try:
        began = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (now - began).total_seconds())


def job_progress(
    job: Mapping[str, Any],
    *,
    chunk_counts: tuple[int, int, int],
    chunks_done: int,
    records_per_remote: Mapping[str, int],
    remote_counts: Mapping[str, RemoteCounts],
    now: datetime,
) -> JobProgress:
    """One snapshot. chunk_counts: (lines, indexed, dead-lettered) over the chunk items so far."""
    state = str(job["state"])
    refs = list(job.get("remote_jobs") or [])
    remotes = []
    for ref in refs:
        name = str(ref.get("id", ""))
        counts = remote_counts.get(name)
        remotes.append(
            RemoteProgress(
                name=name,
                records=records_per_remote.get(name),
                processed=counts.processed if counts else None,
                failed=counts.failed if counts else None,
            )
        )
    prepared = _int(job.get("valid", job.get("records_in")))
    embedded: int | None
    if state in AFTER_INFERENCE:
        embedded = prepared
    elif any(remote.processed is not None for remote in remotes):
        embedded = sum(remote.processed or 0 for remote in remotes)
    elif refs:
        embedded = None  # the service counts nothing while it runs (SageMaker)
    else:
        embedded = 0
    _, indexed, ingest_dead = chunk_counts
    ended = JobStateName(state).terminal
    # Until Finalize writes the totals, the item's dead letters are Prepare's (lines that did not parse).
    dead_lettered = _int(job.get("dead_lettered")) + (0 if ended else ingest_dead)
    chunks = job.get("chunks")
    return JobProgress(
        job_id=str(job["job_id"]),
        state=state,
        records_in=None if job.get("records_in") is None else _int(job["records_in"]),
        prepared=prepared,
        embedded=embedded,
        indexed=_int(job.get("indexed")) if ended else indexed,
        dead_lettered=dead_lettered,
        chunks_done=chunks_done,
        chunks=None if chunks is None else _int(chunks),
        remote_status=job.get("remote_status"),
        remote_jobs_done=_int(job.get("remote_jobs_done")),
        remotes=remotes,
        elapsed_seconds=_seconds_since(job.get("created_at"), now),
        estimated_seconds=_estimated_seconds(job),
    )


def records_per_remote(parts: list[dict[str, Any]], refs: list[dict[str, Any]]) -> dict[str, int]:
    """Prepare's parts list (each part's remote job index and records) summed per remote job name."""
    by_index: dict[int, int] = {}
    for part in parts:
        by_index[int(part["job"])] = by_index.get(int(part["job"]), 0) + int(part["records"])
    return {str(ref.get("id")): by_index.get(index, 0) for index, ref in enumerate(refs) if index in by_index}


@dataclass
class RemoteCounter:
    """The service's counts of each running remote job, through the pipeline's backend (read-only calls).

    `backend()` builds it once (osbatch.backends.backend_for with the target's clients), or gives None for
    a backend without counts (SageMaker, ML Commons). A failed call shows no counts this time, not an
    error: the display goes on."""

    backend: Callable[[], Any]
    _built: list[Any] = field(default_factory=list)

    def counts(self, refs: list[dict[str, Any]]) -> dict[str, RemoteCounts]:
        from osbatch.backends.base import BackendUnavailable
        from osbatch.models import RemoteJob

        if not self._built:
            self._built.append(self.backend())
        found: dict[str, RemoteCounts] = {}
        if self._built[0] is None:
            return found
        for ref in refs:
            remote = RemoteJob(id=ref["id"], arn=ref.get("arn", ""), output_uri=ref.get("output_uri", ""))
            try:
                counts = _service_counts(self._built[0], remote)
            except BackendUnavailable:
                counts = None
            if counts is not None:
                found[remote.id] = counts
        return found


def _service_counts(backend: Any, remote: Any) -> RemoteCounts | None:
    if hasattr(backend, "record_counts"):  # Bedrock
        counts = backend.record_counts(remote)
        if "processedRecordCount" not in counts:
            return None
        return RemoteCounts(
            counts["processedRecordCount"], counts.get("errorRecordCount", 0), counts.get("totalRecordCount")
        )
    if hasattr(backend, "request_counts"):  # OpenAI
        counts = backend.request_counts(remote)
        return RemoteCounts(counts["completed"] + counts["failed"], counts["failed"], counts["total"])
    return None


def read_parts(s3: Any, bucket: str, job_id: str) -> list[dict[str, Any]]:
    """Prepare's parts list, or [] before Prepare has written it."""
    from botocore.exceptions import ClientError

    try:
        parts: list[dict[str, Any]] = json.loads(
            s3.get_object(Bucket=bucket, Key=job_parts_key(job_id))["Body"].read()
        )
    except ClientError:
        return []
    return parts
