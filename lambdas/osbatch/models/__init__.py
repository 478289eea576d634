"""The job document that flows through the workflow (docs/architecture.md, "JobState").

Every workflow step is a function JobState -> JobState, so these models are the whole contract
between the state machine and the Lambda handlers.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobStateName(StrEnum):
    # ML Commons' task vocabulary, plus PARTIALLY_COMPLETED (which ML Commons folds into COMPLETED)
    # and INGESTING (which ML Commons does not have because it does not ingest).
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    UNREACHABLE = "UNREACHABLE"
    INGESTING = "INGESTING"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        JobStateName.COMPLETED,
        JobStateName.PARTIALLY_COMPLETED,
        JobStateName.FAILED,
        JobStateName.CANCELLED,
        JobStateName.EXPIRED,
        JobStateName.UNREACHABLE,
    }
)


class Model(BaseModel):
    # The state machine may carry keys a newer version added; ignore rather than fail a running job.
    model_config = ConfigDict(extra="ignore")


class SourceObject(Model):
    bucket: str
    key: str
    etag: str = ""
    size: int = 0

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class PreparedJob(Model):
    """One remote job's share of the prepared input: the parts under `input_uri` (contracts.job_group)."""

    index: int
    input_uri: str
    parts: int
    records: int
    bytes: int


class Prepared(Model):
    input_uri: str
    parts: int
    records_in: int
    valid: int  # valid records sent to the model (an unchanged one is not: osbatch.incremental)
    dead_lettered: int
    unchanged: int = 0  # valid records whose embedded input had not changed: their vectors were kept
    incremental: dict[str, Any] = {}  # the fingerprint check's counts (incremental.check.IncrementalCounts)
    estimate: dict[str, Any] = {}  # what the plan expects of the job (planning.estimate)
    blank_lines: int = 0
    duplicate_ids: int = 0  # valid records whose id an earlier line of the file already used
    passages: int | None = None  # passages sent, for a pipeline that chunks records (None: it does not)
    # The parts grouped into remote jobs within the backend's JobLimits, in order.
    jobs: list[PreparedJob] = []


class RemoteJob(Model):
    id: str
    arn: str = ""
    output_uri: str
    index: int = 0  # its PreparedJob
    records: int = 0  # valid records sent to it: what a file-level dead letter stands for if it fails
    state: JobStateName = JobStateName.RUNNING  # as PollJob last saw it
    reason: str | None = None
    ingested: bool = False  # PlanIngest has planned its output

    @property
    def succeeded(self) -> bool:
        return self.state in (JobStateName.COMPLETED, JobStateName.PARTIALLY_COMPLETED)


class JobStatus(Model):
    state: JobStateName
    reason: str | None = None
    progress: dict[str, Any] = {}
    # Remote jobs that finished with output not yet planned: the workflow's PartFinished? ingests them.
    ready: int = 0


class PollState(Model):
    attempt: int = 0
    failures: int = 0
    wait_seconds: int
    deadline: int


class IngestPlan(Model):
    """The latest of a job's ingest plans. Chunk numbers run on across plans: this one holds chunks
    `first .. chunks - 1`, earlier ones the rest, so Finalize sums items 0 .. chunks - 1."""

    bucket: str
    key: str
    chunks: int
    objects: int
    first: int = 0
    number: int = 0  # contracts.plan_name(number) is its key; plans 0 .. number exist
    # The Distributed Map's ToleratedFailurePercentagePath: chunks that may fail without failing the job.
    tolerated_failure_percentage: float = 0
    # Records the model output lacks (a silent drop), dead-lettered by PlanIngest (steps/support/join.py).
    dead_lettered: int = 0
    # Chunked pipelines: passages of the records joined with all their vectors (support/passage_join.py).
    passages_embedded: int = 0
    # Input tokens the joined output lines reported (OpenAI's usage), over every plan; None: none did.
    input_tokens: int | None = None


class BatchIngest(Model):
    """A `_batch_ingestion` request run by the workflow: its BatchIngest? Choice skips inference."""

    request: str  # key of the staged request in the output bucket (contracts.batch_request_key)
    files: int


class JobState(Model):
    job_id: str
    pipeline: str
    source: SourceObject
    prepared: Prepared | None = None
    remotes: list[RemoteJob] = []
    status: JobStatus | None = None
    poll: PollState | None = None
    plan: IngestPlan | None = None
    batch: BatchIngest | None = None
    error: dict[str, Any] | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def job_id_for(pipeline: str, bucket: str, key: str, etag: str) -> str:
    """Same object version -> same job id, so a duplicate event or a re-run starts nothing new."""
    digest = hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:16]
    return f"{pipeline}-{digest}"
