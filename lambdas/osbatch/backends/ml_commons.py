"""ML Commons `_batch_predict` through the pipeline's batch connector.

This is the route of AWS's page "Using an OpenSearch Ingestion pipeline with machine learning offline
batch inference":
https://docs.aws.amazon.com/opensearch-service/latest/developerguide/configure-clients-ml-commons-batch.html

Submit is `POST /_plugins/_ml/models/<id>/_batch_predict` with the job's name and prepared locations; ML
Commons runs the connector's batch_predict action (CreateTransformJob, search/batch_connector.py) and keeps a
BATCH_PREDICTION task whose `remote_job` holds what SageMaker answered. Status is `GET
/_plugins/_ml/tasks/<id>`: for such a task ML Commons calls the status action and merges the answer into
`remote_job`. Cancel is `POST /_plugins/_ml/tasks/<id>/_cancel` (the older `_cancel_batch` was renamed).

The state comes from the remote job's own status, by the rules ML Commons applies (its default
`remote_job.status_regex.*` settings, tried in its order, case-insensitive), with one exception: ML Commons
folds PartiallyCompleted into COMPLETED, and osbatch reports PARTIALLY_COMPLETED, from the status or from the
remote job's failure counts.

Output lines are SageMaker's (JoinSource=Input): each carries its record, so nothing is joined.

Idempotent submit: the task id is recorded in `ml-commons-task.json` under the job's output prefix (as
backends/openai.py keeps batches.json) before StartJob returns. A re-run that finds no record (the function
died between the two calls) gets SageMaker's "already exists" through ML Commons, and then finds the task
that names the job among the model's batch tasks.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from osbatch.backends.base import (
    BackendStatus,
    BackendThrottled,
    BackendUnavailable,
    OutputObject,
)
from osbatch.backends.sagemaker import SageMakerBackend, list_outputs
from osbatch.config import MlCommonsJobConfig
from osbatch.models import JobStateName, RemoteJob
from osbatch.s3uri import split_s3_uri
from osbatch.search.batch_connector import batch_parameters
from osbatch.search.ml import MlCommons

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LEDGER_NAME = "ml-commons-task.json"
# ML Commons' default plugins.ml_commons.remote_job.status_field: the fields it reads the status from.
STATUS_FIELDS = ("status", "Status", "TransformJobStatus")
# Its default plugins.ml_commons.remote_job.status_regex.* settings, in the order updateTaskState tries them
# (GetTaskTransportAction, 3.6); Matcher.find, so a rule matches anywhere in the value.
STATE_RULES = (
    (re.compile("(stopping|cancelling)", re.IGNORECASE), JobStateName.CANCELLING),
    (re.compile("(stopped|cancelled)", re.IGNORECASE), JobStateName.CANCELLED),
    (re.compile("(complete|completed|partiallyCompleted)", re.IGNORECASE), JobStateName.COMPLETED),
    (re.compile("(expired|timeout)", re.IGNORECASE), JobStateName.EXPIRED),
    (re.compile("(failed)", re.IGNORECASE), JobStateName.FAILED),
)
PARTIAL = re.compile("partiallyCompleted", re.IGNORECASE)
# Task states ML Commons sets on its own (its poller gives up on a job after 10 failed status calls).
TASK_STATES = {"FAILED": JobStateName.FAILED, "UNREACHABLE": JobStateName.UNREACHABLE}
# What a refused create looks like through ML Commons: its own cap on batch tasks answers 429, and the
# remote service's throttling comes back as "Error from remote service" with the service's error code.
THROTTLING_MARKERS = ("ThrottlingException", "ResourceLimitExceeded", "ServiceUnavailable")
ALREADY_EXISTS_MARKERS = ("already exists", "must be unique", "ResourceInUse")
REASON_FIELDS = ("FailureReason", "message", "failure_reason")


class MlCommonsModelMissing(RuntimeError):
    """The pipeline's batch model is not registered: `osbatch setup` (or the stack) creates it."""


def remote_status(remote_job: dict[str, Any]) -> str | None:
    """The remote job's status as ML Commons reads it: the last of its status fields present."""
    found = None
    for name in STATUS_FIELDS:
        if name in remote_job:
            found = str(remote_job[name])
    return found


def state_of(task: dict[str, Any]) -> JobStateName:
    """ML Commons' mapping (STATE_RULES), with PartiallyCompleted (status or counts) kept honest."""
    remote_job = task.get("remote_job") or {}
    state = JobStateName.RUNNING  # anything else, including a job SageMaker has not described yet
    for name in STATUS_FIELDS:
        if name not in remote_job:
            continue
        value = str(remote_job[name])
        for pattern, rule_state in STATE_RULES:
            if pattern.search(value):
                state = rule_state
                break
    if state is JobStateName.COMPLETED and (
        PARTIAL.search(remote_status(remote_job) or "") or failed_records(remote_job)
    ):
        return JobStateName.PARTIALLY_COMPLETED
    if remote_status(remote_job) is None:
        return TASK_STATES.get(str(task.get("state")), state)
    return state


def failed_records(remote_job: dict[str, Any]) -> int:
    """Failures a remote job counts itself: Bedrock's manifest-style errorRecordCount, OpenAI's
    request_counts.failed. SageMaker counts none; osbatch's own accounting still catches missing lines."""
    counts = remote_job.get("request_counts")
    failed = counts.get("failed", 0) if isinstance(counts, dict) else 0
    return int(remote_job.get("errorRecordCount", 0) or 0) + int(failed or 0)


def status_of(task: dict[str, Any]) -> BackendStatus:
    remote_job = task.get("remote_job") or {}
    state = state_of(task)
    raw = remote_status(remote_job)
    progress: dict[str, Any] = {"remote_status": raw, "task_state": task.get("state")}
    reason = next((str(remote_job[name]) for name in REASON_FIELDS if remote_job.get(name)), None)
    if state is JobStateName.PARTIALLY_COMPLETED:
        failed = failed_records(remote_job)
        reason = f"the remote job reports {raw}" + (f" with {failed} failed records" if failed else "")
    elif reason is None and state in (JobStateName.FAILED, JobStateName.UNREACHABLE):
        reason = str(task.get("error") or f"ML Commons task {state.value}")
    return BackendStatus(state=state, reason=reason, progress=progress)


class MlCommonsBackend:
    limits = SageMakerBackend.limits
    job_limits = SageMakerBackend.job_limits  # ML Commons runs SageMaker transform jobs
    joins_source = False  # the connector runs SageMaker with JoinSource=Input
    result_key = SageMakerBackend.result_key
    # SageMaker's line shape: the record travels through the job with its line number, and needs no join.
    input_line = SageMakerBackend.input_line
    parse_output = SageMakerBackend.parse_output
    passage_lines = SageMakerBackend.passage_lines
    embeddings = SageMakerBackend.embeddings

    def __init__(self, settings: MlCommonsJobConfig, ml: MlCommons, s3: S3Client) -> None:
        self._settings = settings
        self._ml = ml
        self._s3 = s3

    def _model_id(self) -> str:
        model = self._ml.find_model(self._settings.model)
        if model is None:
            raise MlCommonsModelMissing(
                f"ML Commons model '{self._settings.model}' is not registered; run `osbatch setup` "
                "(on AWS, the stack's search provisioning creates it)"
            )
        return str(model["model_id"])

    # --- the ledger: which ML Commons task runs this job ---

    def _ledger_location(self, output_uri: str) -> tuple[str, str]:
        bucket, prefix = split_s3_uri(output_uri)
        return bucket, f"{prefix}{LEDGER_NAME}"

    def _recorded(self, output_uri: str) -> dict[str, Any] | None:
        bucket, key = self._ledger_location(output_uri)
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        record: dict[str, Any] = json.loads(body)
        return record

    def _record(self, output_uri: str, record: dict[str, Any]) -> None:
        bucket, key = self._ledger_location(output_uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())

    def submit(self, name: str, input_uri: str, output_uri: str) -> RemoteJob:
        recorded = self._recorded(output_uri)
        if recorded is not None:
            return RemoteJob(id=recorded["task_id"], arn=recorded.get("job_arn", ""), output_uri=output_uri)
        model_id = self._model_id()
        parameters = batch_parameters(self._settings, name, input_uri, output_uri)
        try:
            response = self._ml.batch_predict(model_id, parameters)
            task_id, remote_job = str(response["task_id"]), response.get("remote_job") or {}
        except TransportError as error:
            text = _error_text(error)
            if error.status_code == 429 or any(marker in text for marker in THROTTLING_MARKERS):
                raise BackendThrottled(f"ML Commons _batch_predict: {text}") from error
            if not any(marker in text for marker in ALREADY_EXISTS_MARKERS):
                raise
            task = self._task_for(model_id, name)
            if task is None:
                raise RuntimeError(
                    f"transform job {name} exists but no ML Commons task of model {model_id} names it"
                ) from error
            task_id, remote_job = str(task["task_id"]), task.get("remote_job") or {}
        arn = str(remote_job.get("TransformJobArn", ""))
        self._record(output_uri, {"task_id": task_id, "model_id": model_id, "job_name": name, "job_arn": arn})
        return RemoteJob(id=task_id, arn=arn, output_uri=output_uri)

    def _task_for(self, model_id: str, job_name: str) -> dict[str, Any] | None:
        for task in self._ml.batch_tasks(model_id):
            remote_job = task.get("remote_job") or {}
            arn = str(remote_job.get("TransformJobArn", ""))
            if remote_job.get("TransformJobName") == job_name or arn.endswith(f"/{job_name}"):
                return task
        return None

    def status(self, remote: RemoteJob) -> BackendStatus:
        try:
            task = self._ml.get_task(remote.id)
        except (TransportError, OpenSearchConnectionError) as error:
            raise BackendUnavailable(f"GET task {remote.id}: {_error_text(error)}") from error
        return status_of(task)

    def cancel(self, remote: RemoteJob) -> None:
        try:
            self._ml.cancel_task(remote.id)
        except TransportError as error:
            # A late cancel: SageMaker refuses to stop a job that has ended, and there is nothing to stop.
            if self.status(remote).state.terminal:
                return
            raise RuntimeError(f"cancelling ML Commons task {remote.id}: {_error_text(error)}") from error

    def outputs(self, remote: RemoteJob) -> list[OutputObject]:
        return list_outputs(self._s3, remote.output_uri)


def _error_text(error: Exception) -> str:
    if isinstance(error, TransportError):
        return f"{error.status_code} {json.dumps(error.info, default=str) if error.info else error.error}"
    return str(error)
