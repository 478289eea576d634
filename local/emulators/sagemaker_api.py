"""moto's SageMaker backend, taught to run transform jobs for real.

moto 5.2.5 records a CreateTransformJob and reports it Completed at once; it does not check the model or the
name, and has no StopTransformJob. Patched here:
- CreateTransformJob: ResourceInUse for a name already used (the error CreateTransformJob documents; job names
  are unique per account and Region), ValidationException `Could not find model "<arn>".` for a ModelName not
  created with CreateModel (SageMaker's wording), ValidationException for requests the emulator cannot run;
  then the job starts InProgress on a worker thread, its model in a container process of its own when the
  service runs with model_workers (transform_worker.py).
- DescribeTransformJob / ListTransformJobs: unchanged; they read the fields the worker keeps current
  (TransformJobStatus, FailureReason, TransformStartTime, TransformEndTime; see DescribeTransformJob,
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTransformJob.html).
- Every state change puts SageMaker's `SageMaker Transform Job State Change` event on the default bus
  (state_events.py).
- StopTransformJob (added): InProgress -> Stopping -> Stopped; ResourceNotFound for an unknown job (the error
  the API documents); a ValidationException naming the status for a job that already ended.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import MissingModel, ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import FakeTransformJob, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter

from local.emulators.faults import FAULTS
from local.emulators.jobs import JobRecord, JobRunner
from local.emulators.s3_io import ClientFactory
from local.emulators.sagemaker_request import TransformRequestError, TransformSpec
from local.emulators.sagemaker_transform import STATUS, EmbedderLoader, TransformWork, internal_error
from local.emulators.state_events import put_transform_job_event
from local.emulators.transform_worker import ModelWorker
from local.model import Embedder

# One runner per process: a later install() changes how new jobs run, not the record of running ones.
RUNNER = JobRunner(describe_unexpected=internal_error, name="sagemaker")


class TransformService:
    """Starts, tracks and stops transform jobs; what the patched backend methods delegate to."""

    def __init__(
        self,
        s3_clients: ClientFactory,
        load_embedder: EmbedderLoader,
        runner: JobRunner = RUNNER,
        *,
        model_workers: bool = False,
    ) -> None:
        """model_workers: each job's model runs in a process of its own (load_embedder must then be
        picklable: a module-level function), as SageMaker runs it in a container."""
        self.runner = runner
        self._s3_clients = s3_clients
        self._load_embedder = load_embedder
        self._model_workers = model_workers

    def _job_model(self, model_dir: str | None, job: str) -> Embedder:
        if self._model_workers:
            return ModelWorker(job, self._load_embedder, model_dir)
        return self._load_embedder(model_dir)

    def create(
        self, backend: SageMakerModelBackend, create: Callable[..., FakeTransformJob], **request: Any
    ) -> FakeTransformJob:
        name = request["transform_job_name"]
        if name in backend.transform_jobs:
            arn = FakeTransformJob.arn_formatter(name, backend.account_id, backend.region_name)
            raise ResourceInUseException(
                f"Transform job names must be unique within an AWS account and region, and a transform job "
                f"with this name already exists ({arn})"
            )
        model = backend._models.get(request["model_name"])
        if model is None:
            raise MissingModel(
                arn_formatter("model", request["model_name"], backend.account_id, backend.region_name)
            )
        try:
            spec = TransformSpec.from_request(
                _as_api_names(request),
                model_environment=_model_environment(model),
                role_arn=model.execution_role_arn,
            )
        except TransformRequestError as error:
            raise ValidationError(message=str(error)) from error
        job = create(backend, **request)
        # moto fills these for an instantly Completed job; a running job has no end time nor failure.
        _set_fields(
            job, failure_reason=None, transform_end_time=None, labeling_job_arn=None, auto_ml_job_arn=None
        )
        work = TransformWork(
            spec,
            self._s3_clients(backend.region_name),
            self._job_model,
            FAULTS.snapshot(),
            FAULTS.hold_transform,
        )
        self.runner.start(job.arn, work, on_change=functools.partial(_show_state, job))
        return job

    def stop(self, backend: SageMakerModelBackend, name: str) -> None:
        job = backend.transform_jobs.get(name)
        arn = FakeTransformJob.arn_formatter(name, backend.account_id, backend.region_name)
        if job is None:
            raise ResourceNotFound(f"Could not find transform job '{arn}'.")
        if job.transform_job_status in {"Completed", "Failed", "Stopped"}:
            status = job.transform_job_status
            raise ValidationError(
                f"The request was rejected because the transform job is in status {status}."
            )
        if self.runner.get(arn) is not None:
            self.runner.stop(arn)


def _show_state(job: FakeTransformJob, record: JobRecord) -> None:
    _set_fields(
        job,
        transform_job_status=STATUS[record.state.value],
        failure_reason=record.failure_reason,
        transform_start_time=record.started_at.replace(tzinfo=None),  # moto keeps naive UTC times
        transform_end_time=record.ended_at.replace(tzinfo=None) if record.ended_at else None,
        last_modified_time=utcnow(),
    )
    # After the state is visible, as SageMaker's own event follows the change it announces.
    put_transform_job_event(job.response_object, job.tags)


def _set_fields(job: FakeTransformJob, **fields: Any) -> None:
    # moto builds DescribeTransformJob from the job's attributes and leaves out the None ones, which is how
    # SageMaker omits FailureReason or TransformEndTime it does not have; moto's annotations say str.
    vars(job).update(fields)


def _model_environment(model: Any) -> dict[str, str]:
    containers = [model.primary_container or {}, *(model.containers or [])]
    for container in containers:
        if container.get("Environment"):
            return dict(container["Environment"])
    return {}


def _as_api_names(request: dict[str, Any]) -> dict[str, Any]:
    """moto passes snake_case keyword arguments; the spec reads CreateTransformJob's own parameter names."""
    names = {
        "transform_job_name": "TransformJobName",
        "max_payload_in_mb": "MaxPayloadInMB",
        "batch_strategy": "BatchStrategy",
        "environment": "Environment",
        "transform_input": "TransformInput",
        "transform_output": "TransformOutput",
        "data_processing": "DataProcessing",
    }
    return {api: request.get(python) for python, api in names.items()}


# The service the patched methods delegate to; install() replaces it, the patch itself is applied once.
_active: list[TransformService] = []
_original_create = SageMakerModelBackend.create_transform_job


def patch_moto(service: TransformService) -> None:
    """Route moto's transform-job calls to `service`."""
    first = not _active
    _active[:] = [service]
    if first:
        _patch()


def unpatch_moto() -> None:
    """moto as it was: for tests, so the patch does not leak into tests of plain moto behaviour."""
    if not _active:
        return
    SageMakerModelBackend.create_transform_job = _original_create  # type: ignore[method-assign]
    del SageMakerModelBackend.stop_transform_job  # type: ignore[attr-defined]
    del SageMakerResponse.stop_transform_job  # type: ignore[attr-defined]
    _active.clear()


def _create_transform_job(self: SageMakerModelBackend, **request: Any) -> FakeTransformJob:
    return _active[0].create(self, _original_create, **request)


def _stop_transform_job(self: SageMakerModelBackend, transform_job_name: str) -> None:
    _active[0].stop(self, transform_job_name)


def _stop_transform_job_response(self: SageMakerResponse) -> ActionResult:
    backend: Any = self.sagemaker_backend  # has stop_transform_job once patched
    backend.stop_transform_job(self._get_param("TransformJobName"))
    return EmptyResult()


def _patch() -> None:
    SageMakerModelBackend.create_transform_job = _create_transform_job  # type: ignore[assignment]
    SageMakerModelBackend.stop_transform_job = _stop_transform_job  # type: ignore[attr-defined]
    # moto dispatches each action to the response method of its name: StopTransformJob -> stop_transform_job.
    SageMakerResponse.stop_transform_job = _stop_transform_job_response  # type: ignore[attr-defined]
