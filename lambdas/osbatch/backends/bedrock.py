"""Amazon Bedrock batch inference.

API: CreateModelInvocationJob, GetModelInvocationJob, StopModelInvocationJob
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelInvocationJob.html); data format:
https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html.

Record ids. An input line is `{"recordId", "modelInput"}` and an output line `{"recordId", "modelInput",
"modelOutput" | "error"}`, in no guaranteed order. Nothing else of the source record travels through the
job, and the recordId is documented as an 11-character alphanumeric string, too short to carry a user's
`_id` (any string up to 512 bytes). So the recordId carries only the record's line in the user's file
(`record_id(line)`: "R" + ten digits, unique in the job, deterministic), and Prepare keeps the valid
source records of each input part next to it (contracts.job_source_prefix). PlanIngest joins each output
line back onto its record by that line number (steps/support/join.py): the joined record is the source record
with `modelOutput` added, exactly the shape SageMaker's JoinSource=Input gives, so field_map addresses
`$.modelOutput.embedding`, `$.text`, `$._id` and any other source field, and a dead letter cites the line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from osbatch import jsonlines
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
from osbatch.config import BedrockJobConfig, BedrockModelFamily
from osbatch.models import JobStateName, RemoteJob
from osbatch.s3uri import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_s3 import S3Client

# GetModelInvocationJob's `status` values.
STATUS_MAP = {
    "Submitted": JobStateName.RUNNING,
    "Validating": JobStateName.RUNNING,
    "Scheduled": JobStateName.RUNNING,
    "InProgress": JobStateName.RUNNING,
    "Completed": JobStateName.COMPLETED,
    # ML Commons folds this into COMPLETED; osbatch keeps it, with the manifest's counts as the reason.
    "PartiallyCompleted": JobStateName.PARTIALLY_COMPLETED,
    "Failed": JobStateName.FAILED,
    "Stopping": JobStateName.CANCELLING,
    "Stopped": JobStateName.CANCELLED,
    "Expired": JobStateName.EXPIRED,
}
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}
)
# Data Prepper's ml_inference processor also retries a 400 whose message says so: shouldRetry in
# opensearch-project/data-prepper, data-prepper-plugins/ml-inference-processor, BedrockBatchJobCreator.java.
THROTTLING_MESSAGES = ("quota for number of concurrent invoke-model jobs", "throttling")
RECORD_ID_DIGITS = 10  # "R" + 10 digits = 11 characters, the documented recordId length
_RECORD_ID = re.compile(rf"^R(\d{{{RECORD_ID_DIGITS}}})$")
OUTPUT_SUFFIX = ".jsonl.out"
MANIFEST_NAME = "manifest.json.out"
# The counts GetModelInvocationJob (and manifest.json.out) report for a job.
RECORD_COUNTS = ("totalRecordCount", "processedRecordCount", "successRecordCount", "errorRecordCount")
RESULT_KEY = "modelOutput"


# A chunked record's passage: "P" + the line in 6 base-36 digits + the passage in 4 (still 11 alphanumeric
# characters): lines up to 36**6 (2.1 billion), passages up to 36**4 (1.6 million) per record.
PASSAGE_LINE_DIGITS, PASSAGE_DIGITS = 6, 4
_PASSAGE_ID = re.compile(rf"^P([0-9A-Z]{{{PASSAGE_LINE_DIGITS}}})([0-9A-Z]{{{PASSAGE_DIGITS}}})$")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _base36(value: int, digits: int) -> str:
    if not 0 <= value < 36**digits:
        raise ValueError(f"{value} does not fit {digits} base-36 digits of a Bedrock recordId")
    text = ""
    for _ in range(digits):
        value, digit = divmod(value, 36)
        text = _BASE36[digit] + text
    return text


def passage_record_id(line: int, passage: int) -> str:
    return f"P{_base36(line, PASSAGE_LINE_DIGITS)}{_base36(passage, PASSAGE_DIGITS)}"


def passage_of(record_id_value: Any) -> tuple[int, int] | None:
    """(line, passage) of a passage's recordId; None for any other value."""
    match = _PASSAGE_ID.match(record_id_value) if isinstance(record_id_value, str) else None
    return (int(match.group(1), 36), int(match.group(2), 36)) if match else None


def record_id(line: int) -> str:
    if not 0 < line < 10**RECORD_ID_DIGITS:
        raise ValueError(f"line {line} does not fit a Bedrock recordId")
    return f"R{line:0{RECORD_ID_DIGITS}d}"


def line_of(record_id_value: Any) -> int | None:
    match = _RECORD_ID.match(record_id_value) if isinstance(record_id_value, str) else None
    return int(match.group(1)) if match else None


def model_input(settings: BedrockJobConfig, text: str) -> dict[str, Any]:
    """InvokeModel's request body for one text, per model family."""
    if settings.family is BedrockModelFamily.TITAN_EMBED_V2:
        return {"inputText": text, "dimensions": settings.dimensions, "normalize": settings.normalize}
    if settings.family is BedrockModelFamily.COHERE_EMBED:
        return {"texts": [text], "input_type": settings.input_type, "truncate": settings.truncate}
    prompt = settings.prompt.replace("{text}", text)  # not str.format: the text may hold braces
    return {
        "anthropic_version": settings.anthropic_version,
        "max_tokens": settings.max_tokens,
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
    }


def job_id_of(arn: str) -> str:
    """The job's id, the last part of its ARN; Bedrock writes the output under `<s3Uri>/<job id>/`."""
    return arn.rsplit("/", 1)[-1]


class BedrockBackend:
    joins_source = True
    result_key = RESULT_KEY

    def __init__(
        self,
        settings: BedrockJobConfig,
        bedrock: BedrockClient,
        s3: S3Client,
        tags: dict[str, str],
        role_arn: str = "",
    ) -> None:
        self._settings = settings
        self._bedrock = bedrock
        self._s3 = s3
        self._tags = tags
        self._role_arn = settings.role_arn or role_arn
        quotas = settings.quotas
        self.limits = InputLimits(
            max_records_per_file=min(quotas.max_records_per_file, quotas.max_records_per_job),
            max_bytes_per_file=min(quotas.max_file_bytes, quotas.max_job_bytes),
        )
        self.job_limits = JobLimits(
            max_records_per_job=quotas.max_records_per_job,
            max_bytes_per_job=quotas.max_job_bytes,
            min_records_per_job=quotas.min_records_per_job,
        )

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        return {"recordId": record_id(line), "modelInput": model_input(self._settings, text)}

    def passage_lines(
        self, line: int, passages: Sequence[PassageInput], holder: TextHolder
    ) -> list[tuple[dict[str, Any], int]]:
        settings = self._settings
        return [
            (
                {
                    "recordId": passage_record_id(line, passage.number),
                    "modelInput": model_input(settings, passage.text),
                },
                1,
            )
            for passage in passages
        ]

    def embeddings(self, result: Any) -> list[Any]:
        """Titan's `embedding`; Cohere's `embeddings` (a list, or by type with `float`), one text each."""
        if isinstance(result, dict) and isinstance(result.get("embedding"), list):
            return [result["embedding"]]
        vectors = result.get("embeddings") if isinstance(result, dict) else None
        if isinstance(vectors, dict):
            vectors = vectors.get("float")
        if isinstance(vectors, list) and vectors:
            return [vectors[0]]
        raise NotAnEmbedding(f"the model output holds no embedding: {str(result)[:200]}")

    def submit(self, name: str, input_uri: str, output_uri: str) -> RemoteJob:
        try:
            response = self._bedrock.create_model_invocation_job(
                jobName=name,
                roleArn=self._role_arn,
                modelId=self._settings.model_id,
                # Bedrock returns the job it created for this token instead of a second one: a re-run of
                # StartJob finds its job.
                clientRequestToken=name,
                inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
                outputDataConfig={"s3OutputDataConfig": {"s3Uri": output_uri}},
                timeoutDurationInHours=self._settings.timeout_hours,
                tags=[{"key": key, "value": value} for key, value in sorted(self._tags.items())],
            )
        except ClientError as error:
            code, message = _error(error)
            if code in THROTTLING_CODES or any(text in message.lower() for text in THROTTLING_MESSAGES):
                raise BackendThrottled(f"Bedrock {code}: {message}") from error
            raise
        return RemoteJob(id=name, arn=response["jobArn"], output_uri=output_uri)

    def record_counts(self, remote: RemoteJob) -> dict[str, int]:
        """The record counts GetModelInvocationJob reports while the job runs, read only, for progress
        displays (Amazon Bedrock API Reference, "GetModelInvocationJob"); empty where it reports none."""
        try:
            job = self._bedrock.get_model_invocation_job(jobIdentifier=remote.arn)
        except ClientError as error:
            code, message = _error(error)
            raise BackendUnavailable(f"GetModelInvocationJob {code}: {message}") from error
        details: dict[str, Any] = dict(job)
        return {name: int(details[name]) for name in RECORD_COUNTS if details.get(name) is not None}

    def status(self, remote: RemoteJob) -> BackendStatus:
        try:
            job = self._bedrock.get_model_invocation_job(jobIdentifier=remote.arn)
        except ClientError as error:
            code, message = _error(error)
            raise BackendUnavailable(f"GetModelInvocationJob {code}: {message}") from error
        raw = str(job["status"])
        state = STATUS_MAP.get(raw, JobStateName.RUNNING)
        progress: dict[str, Any] = {"remote_status": raw}
        reason = job.get("message")
        if state is JobStateName.PARTIALLY_COMPLETED:
            counts = self.manifest(remote)
            progress.update(counts)
            reason = (
                f"Bedrock PartiallyCompleted: {counts.get('errorRecordCount', '?')} of "
                f"{counts.get('totalRecordCount', '?')} records failed (manifest.json.out)"
            )
        return BackendStatus(state=state, reason=reason, progress=progress)

    def manifest(self, remote: RemoteJob) -> dict[str, Any]:
        """manifest.json.out's counts; {} when the job wrote none."""
        bucket, prefix = split_s3_uri(remote.output_uri)
        key = f"{prefix}{job_id_of(remote.arn)}/{MANIFEST_NAME}"
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return {}
        counts = jsonlines.loads(body)
        return {name: value for name, value in counts.items() if isinstance(value, int)}

    def cancel(self, remote: RemoteJob) -> None:
        try:
            self._bedrock.stop_model_invocation_job(jobIdentifier=remote.arn)
        except ClientError as error:
            code, message = _error(error)
            # Stopping a job that already ended is what a late cancel looks like; nothing to do.
            if code in {"ValidationException", "ConflictException"} and "status" in message.lower():
                return
            raise

    def outputs(self, remote: RemoteJob) -> list[OutputObject]:
        bucket, prefix = split_s3_uri(remote.output_uri)
        objects = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(OUTPUT_SUFFIX):
                    objects.append(OutputObject(bucket, item["Key"], int(item["Size"])))
        return sorted(objects, key=lambda output: output.key)

    def parse_output(self, line: dict[str, Any]) -> OutputLine:
        number, passage = line_of(line.get("recordId")), None
        if number is None and (found := passage_of(line.get("recordId"))) is not None:
            number, passage = found
        error = line.get("error")
        if isinstance(error, dict):
            return OutputLine(
                number,
                error={"code": error.get("errorCode"), "message": str(error.get("errorMessage", ""))},
                passage=passage,
            )
        if RESULT_KEY not in line:
            return OutputLine(
                number, error={"code": "missing", "message": "no modelOutput and no error"}, passage=passage
            )
        return OutputLine(number, result=line[RESULT_KEY], passage=passage)


def _error(error: ClientError) -> tuple[str, str]:
    details = error.response.get("Error", {})
    return str(details.get("Code", "")), str(details.get("Message", ""))
