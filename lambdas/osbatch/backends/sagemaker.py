"""SageMaker Batch Transform.

API: CreateTransformJob, DescribeTransformJob, StopTransformJob
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html).
Input lines are the source records (plus osbatch's `_osbatch` bookkeeping); with JoinSource=Input each
output line is that record with `SageMakerOutput` added, so the output carries everything ingest needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from osbatch.backends.base import (
    BackendStatus,
    BackendThrottled,
    BackendUnavailable,
    InputLimits,
    JobLimits,
    NotAnEmbedding,
    OutputLine,
    OutputObject,
    PassageInput,
    TextHolder,
)
from osbatch.config import MiB, SageMakerJobConfig
from osbatch.models import JobStateName, RemoteJob
from osbatch.record_paths import BOOKKEEPING_KEY
from osbatch.s3uri import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

# DescribeTransformJob's TransformJobStatus values.
STATUS_MAP = {
    "InProgress": JobStateName.RUNNING,
    "Completed": JobStateName.COMPLETED,
    "Failed": JobStateName.FAILED,
    "Stopping": JobStateName.CANCELLING,
    "Stopped": JobStateName.CANCELLED,
}
THROTTLING_CODES = frozenset({"ThrottlingException", "ResourceLimitExceeded", "ServiceUnavailable"})


class SageMakerBackend:
    limits = InputLimits(max_records_per_file=100_000, max_bytes_per_file=512 * 1024 * 1024)
    # Batch Transform has no per-job record quota; this bound keeps one transform job to hours, not days,
    # so a failed job re-runs a bounded slice and a large upload's first parts are searchable early.
    job_limits = JobLimits(max_records_per_job=1_000_000, max_bytes_per_job=5 * 1024**3)
    joins_source = False  # JoinSource=Input: every output line is its input record plus the output
    result_key = "SageMakerOutput"

    def __init__(
        self, settings: SageMakerJobConfig, sagemaker: SageMakerClient, s3: S3Client, tags: dict[str, str]
    ) -> None:
        self._settings = settings
        self._sagemaker = sagemaker
        self._s3 = s3
        self._tags = tags
        # "The value in MaxPayloadInMB must be greater than, or equal to, the size of a single record"
        # (CreateTransformJob, docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html):
        # one record over it fails the transform job, and with it every record of the job.
        self.limits = replace(SageMakerBackend.limits, max_bytes_per_line=settings.MaxPayloadInMB * MiB)

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        # JoinSource=Input returns the whole input line, so the line number travels through the job.
        return {**record, "_osbatch": {"line": line}}

    def submit(self, name: str, input_uri: str, output_uri: str) -> RemoteJob:
        settings = self._settings
        transform_input = {
            **settings.TransformInput,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
        }
        request: dict[str, Any] = {
            "TransformJobName": name,
            "ModelName": settings.ModelName,
            "DataProcessing": settings.DataProcessing,
            "TransformInput": transform_input,
            "TransformOutput": {**settings.TransformOutput, "S3OutputPath": output_uri},
            "TransformResources": settings.TransformResources,
            "MaxConcurrentTransforms": settings.MaxConcurrentTransforms,
            "MaxPayloadInMB": settings.MaxPayloadInMB,
            "BatchStrategy": settings.BatchStrategy,
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(self._tags.items())],
        }
        try:
            response = self._sagemaker.create_transform_job(**request)
            arn = response["TransformJobArn"]
        except ClientError as error:
            code, message = _error(error)
            if code in THROTTLING_CODES:
                raise BackendThrottled(f"SageMaker {code}: {message}") from error
            if code in {"ValidationException", "ResourceInUse"} and (
                "already exists" in message or "must be unique" in message
            ):
                # A re-run of StartJob: the job we created last time is the job.
                arn = self._sagemaker.describe_transform_job(TransformJobName=name)["TransformJobArn"]
            else:
                raise
        return RemoteJob(id=name, arn=arn, output_uri=output_uri)

    def status(self, remote: RemoteJob) -> BackendStatus:
        try:
            job = self._sagemaker.describe_transform_job(TransformJobName=remote.id)
        except ClientError as error:
            code, message = _error(error)
            raise BackendUnavailable(f"DescribeTransformJob {code}: {message}") from error
        raw = job["TransformJobStatus"]
        state = STATUS_MAP.get(raw, JobStateName.RUNNING)
        progress: dict[str, Any] = {"remote_status": raw}
        if "TransformStartTime" in job:
            progress["started_at"] = str(job["TransformStartTime"])
        return BackendStatus(state=state, reason=job.get("FailureReason"), progress=progress)

    def cancel(self, remote: RemoteJob) -> None:
        try:
            self._sagemaker.stop_transform_job(TransformJobName=remote.id)
        except ClientError as error:
            code, message = _error(error)
            # Stopping a job that already finished is what a late cancel looks like; nothing to do.
            if code == "ValidationException" and "status" in message.lower():
                return
            raise

    def outputs(self, remote: RemoteJob) -> list[OutputObject]:
        return list_outputs(self._s3, remote.output_uri)

    def passage_lines(
        self, line: int, passages: Sequence[PassageInput], holder: TextHolder
    ) -> list[tuple[dict[str, Any], int]]:
        return passage_lines(line, passages, holder)

    def parse_output(self, line: dict[str, Any]) -> OutputLine:
        return parse_passage_output(line)

    def embeddings(self, result: Any) -> list[Any]:
        return embeddings(result)


# A chunked record's passages (SageMaker and ML Commons, which runs SageMaker): one line per passage holding
# its text where the InputFilter reads it and the bookkeeping JoinSource=Input brings back, so the output
# says which record and passage each vector belongs to (steps/support/passage_join.py groups them).


def passage_lines(
    line: int, passages: Sequence[PassageInput], holder: TextHolder
) -> list[tuple[dict[str, Any], int]]:
    count = len(passages)
    return [
        (
            {
                **holder(passage.text),
                BOOKKEEPING_KEY: {
                    "line": line,
                    "passage": passage.number,
                    "passages": count,
                    "start": passage.start,
                    "end": passage.end,
                },
            },
            1,
        )
        for passage in passages
    ]


def parse_passage_output(line: dict[str, Any]) -> OutputLine:
    bookkeeping = line.get(BOOKKEEPING_KEY)
    bookkeeping = bookkeeping if isinstance(bookkeeping, dict) else {}
    number, passage = bookkeeping.get("line"), bookkeeping.get("passage")
    number = number if isinstance(number, int) else None
    passage = passage if isinstance(passage, int) else None
    if SageMakerBackend.result_key not in line:
        return OutputLine(number, error={"code": "missing", "message": "no SageMakerOutput"}, passage=passage)
    return OutputLine(number, result=line[SageMakerBackend.result_key], passage=passage)


def embeddings(result: Any) -> list[Any]:
    """A sentence embedder's answer to one string: its vector (some containers wrap it in a list of one)."""
    if isinstance(result, list) and len(result) == 1 and isinstance(result[0], list):
        return [result[0]]
    if isinstance(result, list) and result and all(isinstance(value, int | float) for value in result):
        return [result]
    raise NotAnEmbedding(f"the model output is not a vector: {str(result)[:200]}")


def list_outputs(s3: S3Client, output_uri: str) -> list[OutputObject]:
    """A transform job's `<input>.out` objects under its S3OutputPath (also run by ML Commons' connector)."""
    bucket, prefix = split_s3_uri(output_uri)
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".out"):
                objects.append(OutputObject(bucket, item["Key"], int(item["Size"])))
    return sorted(objects, key=lambda output: output.key)


def _error(error: ClientError) -> tuple[str, str]:
    details = error.response.get("Error", {})
    return str(details.get("Code", "")), str(details.get("Message", ""))
