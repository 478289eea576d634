"""moto's Bedrock backend, taught batch inference: Create/Get/Stop/ListModelInvocationJob(s).

moto 5.2.5 has no model invocation jobs. BedrockResponse dispatches each REST action to the method of its
name, so adding the methods is enough to serve them. Behaviour follows the API reference
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelInvocationJob.html etc.):
- CreateModelInvocationJob returns {"jobArn"}; the same clientRequestToken returns the job it created
  (idempotency); a jobName in use by another token is a ConflictException; an unsupported model is a
  ValidationException; a ThrottlingException (fault injection) or a ServiceQuotaExceededException when the
  model already has its quota of jobs in progress.
- GetModelInvocationJob: status Submitted -> InProgress -> Completed | PartiallyCompleted | Failed, or
  Stopping -> Stopped; `message` for a failure; ResourceNotFoundException for an unknown job.
- StopModelInvocationJob: ValidationException naming the status for a job that already ended.
- Every state change puts Bedrock's `Batch Inference Job State Change` event on the default bus
  (state_events.py).
- The job runs on the shared JobRunner (jobs.py) on the local model (bedrock_batch.py).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from moto.bedrock.models import BedrockBackend
from moto.bedrock.responses import BedrockResponse
from moto.core.exceptions import JsonRESTError

from local.emulators.bedrock_batch import Counts, InvocationWork, model_family
from local.emulators.faults import FAULTS, FaultSettings
from local.emulators.jobs import JobRecord, JobRunner, JobState
from local.emulators.s3_io import ClientFactory
from local.emulators.state_events import put_batch_job_event
from local.model import Embedder

RUNNER = JobRunner(
    describe_unexpected=lambda error: f"Internal error: {type(error).__name__}: {error}", name="bedrock"
)
IN_PROGRESS = frozenset({"Submitted", "Validating", "Scheduled", "InProgress", "Stopping"})
_ID_CHARS = string.ascii_lowercase + string.digits


class BedrockError(JsonRESTError):
    def __init__(self, error_type: str, message: str, code: int = 400) -> None:
        super().__init__(error_type, message)
        self.code = code


@dataclass
class InvocationJob:
    arn: str
    name: str
    model_id: str
    role_arn: str
    token: str
    input_config: dict[str, Any]
    output_config: dict[str, Any]
    timeout_hours: int
    status: str = "Submitted"
    message: str | None = None
    submitted: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ended: dt.datetime | None = None
    counts: Counts = field(default_factory=Counts)

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "modelId": self.model_id,
            "clientRequestToken": self.token,
            "roleArn": self.role_arn,
            "status": self.status,
            "submitTime": self.submitted.isoformat(),
            "lastModifiedTime": self.modified.isoformat(),
            "inputDataConfig": self.input_config,
            "outputDataConfig": self.output_config,
            "timeoutDurationInHours": self.timeout_hours,
            "jobExpirationTime": (self.submitted + dt.timedelta(hours=self.timeout_hours)).isoformat(),
        }
        # The record counts GetModelInvocationJob reports while the job runs (Amazon Bedrock API
        # Reference, "GetModelInvocationJob",
        # docs.aws.amazon.com/bedrock/latest/APIReference/API_GetModelInvocationJob.html).
        body |= {
            name: count for name, count in self.counts.manifest().items() if name.endswith("RecordCount")
        }
        if self.message:
            body["message"] = self.message
        if self.ended:
            body["endTime"] = self.ended.isoformat()
        return body


class InvocationService:
    def __init__(
        self,
        s3_clients: ClientFactory,
        load_embedder: Callable[[], Embedder],
        faults: FaultSettings = FAULTS,
        runner: JobRunner = RUNNER,
    ) -> None:
        self._s3_clients = s3_clients
        self._load_embedder = load_embedder
        self._faults = faults
        self.runner = runner

    @staticmethod
    def jobs(backend: BedrockBackend) -> dict[str, InvocationJob]:
        # Kept on the backend, so moto's reset forgets them with everything else.
        store: dict[str, InvocationJob] = vars(backend).setdefault("_osbatch_invocation_jobs", {})
        return store

    def create(self, backend: BedrockBackend, params: dict[str, Any]) -> InvocationJob:
        jobs = self.jobs(backend)
        name, token = str(params.get("jobName", "")), str(params.get("clientRequestToken") or "")
        for job in jobs.values():
            if job.name == name:
                if token and job.token == token:
                    return job  # the same request again
                raise BedrockError("ConflictException", f"A job with name {name} already exists")
        model_id = str(params.get("modelId", ""))
        family = model_family(model_id)
        if family is None:
            raise BedrockError("ValidationException", f"The provided model identifier {model_id} is invalid")
        if self._faults.take("throttle_creates"):
            message = "Too many requests, please wait before trying again."
            raise BedrockError("ThrottlingException", message, 429)
        faults = self._faults.snapshot()
        running = sum(1 for job in jobs.values() if job.model_id == model_id and job.status in IN_PROGRESS)
        if running >= faults.max_jobs_in_progress:
            raise BedrockError(
                "ServiceQuotaExceededException",
                f"You have reached the quota of {faults.max_jobs_in_progress} batch inference jobs "
                f"in progress for {model_id}",
            )
        try:
            input_uri = params["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
            output_uri = params["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
        except (KeyError, TypeError) as error:
            raise BedrockError("ValidationException", f"missing {error}") from error
        job_id = "".join(secrets.choice(_ID_CHARS) for _ in range(12))
        arn = f"arn:aws:bedrock:{backend.region_name}:{backend.account_id}:model-invocation-job/{job_id}"
        job = InvocationJob(
            arn=arn,
            name=name,
            model_id=model_id,
            role_arn=str(params.get("roleArn", "")),
            token=token,
            input_config=params["inputDataConfig"],
            output_config=params["outputDataConfig"],
            timeout_hours=int(params.get("timeoutDurationInHours") or 168),
        )
        jobs[arn] = job
        work = InvocationWork(
            job_id=job_id,
            family=family,
            input_uri=input_uri,
            output_uri=output_uri,
            s3=self._s3_clients(backend.region_name),
            load_embedder=self._load_embedder,
            faults=faults,
            on_counts=lambda counts: setattr(job, "counts", counts),
            live_faults=self._faults.snapshot,
        )
        self.runner.start(arn, work, on_change=lambda record: _show_state(job, record))
        return job

    def get(self, backend: BedrockBackend, identifier: str) -> InvocationJob:
        if self._faults.take("fail_status_calls"):
            raise BedrockError("InternalServerException", "Internal server error (emulator fault)", 500)
        jobs = self.jobs(backend)
        job = jobs.get(identifier) or next((job for job in jobs.values() if job.name == identifier), None)
        if job is None:
            raise BedrockError("ResourceNotFoundException", f"Could not find job {identifier}", 404)
        return job

    def stop(self, backend: BedrockBackend, identifier: str) -> None:
        job = self.get(backend, identifier)
        if job.status not in IN_PROGRESS:
            raise BedrockError("ValidationException", f"The job cannot be stopped in status {job.status}")
        self.runner.stop(job.arn)


def _show_state(job: InvocationJob, record: JobRecord) -> None:
    if record.state is JobState.RUNNING:
        job.status = "InProgress"
    elif record.state is JobState.STOPPING:
        job.status = "Stopping"
    elif record.state is JobState.STOPPED:
        job.status = "Stopped"
    elif record.state is JobState.FAILED:
        job.status, job.message = "Failed", record.failure_reason
    else:
        job.status = "PartiallyCompleted" if job.counts.errors else "Completed"
    job.modified = dt.datetime.now(dt.UTC)
    if record.ended_at is not None:
        job.ended = record.ended_at
    # After the state is visible, as Bedrock's own event follows the change it announces.
    put_batch_job_event(
        name=job.name,
        arn=job.arn,
        model_id=job.model_id,
        status=job.status,
        message=job.message,
        submitted=job.submitted,
    )


_active: list[InvocationService] = []


def _service() -> InvocationService:
    return _active[0]


def _create(self: BedrockResponse) -> str:
    job = _service().create(self.bedrock_backend, json.loads(self.body or "{}"))
    return json.dumps({"jobArn": job.arn})


def _get(self: BedrockResponse) -> str:
    identifier = unquote(self.path.rstrip("/").split("/")[-1])
    return json.dumps(_service().get(self.bedrock_backend, identifier).describe())


def _stop(self: BedrockResponse) -> str:
    identifier = unquote(self.path.rstrip("/").split("/")[-2])
    _service().stop(self.bedrock_backend, identifier)
    return json.dumps({})


def _list(self: BedrockResponse) -> str:
    status = self._get_param("statusEquals")
    contains = self._get_param("nameContains")
    summaries = [
        job.describe()
        for job in InvocationService.jobs(self.bedrock_backend).values()
        if (not status or job.status == status) and (not contains or contains in job.name)
    ]
    return json.dumps({"invocationJobSummaries": summaries})


_METHODS = {
    "create_model_invocation_job": _create,
    "get_model_invocation_job": _get,
    "stop_model_invocation_job": _stop,
    "list_model_invocation_jobs": _list,
}


def patch_moto(service: InvocationService) -> None:
    _active[:] = [service]
    for name, method in _METHODS.items():
        setattr(BedrockResponse, name, method)


def unpatch_moto() -> None:
    if not _active:
        return
    for name in _METHODS:
        delattr(BedrockResponse, name)
    _active.clear()
