"""CreateTransformJob's request, checked and reduced to what the local worker needs.

CreateTransformJob (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html):
TransformInput.DataSource.S3DataSource (S3Prefix or ManifestFile), SplitType, ContentType, CompressionType;
TransformOutput (S3OutputPath, Accept, AssembleWith); DataProcessing (InputFilter, JoinSource, OutputFilter);
MaxPayloadInMB (default 6, 0 = no limit); Environment, merged over the model container's.

Only JSON Lines is emulated: SplitType Line, JSON content, no compression. Anything else is refused when the
job is created, so a pipeline never silently gets different output locally than on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.emulators.jsonpath_filter import JsonPathError, JsonPathFilter
from local.emulators.s3_io import S3Location

MODEL_DIR_VARIABLE = "OSBATCH_LOCAL_MODEL_DIR"
# A model whose environment sets this to "true" holds its jobs InProgress until StopTransformJob: tests that
# must act on a running job (cancel) then never race the model.
HOLD_VARIABLE = "OSBATCH_LOCAL_HOLD_UNTIL_STOPPED"
DEFAULT_MAX_PAYLOAD_MB = 6
JSON_CONTENT_TYPES = frozenset({"application/json", "application/jsonlines", "application/x-jsonlines"})


class TransformRequestError(ValueError):
    """A CreateTransformJob request this emulator cannot run; becomes a ValidationException."""


@dataclass(frozen=True)
class TransformSpec:
    job_name: str
    data_type: str  # S3Prefix | ManifestFile
    input_uri: str
    output: S3Location  # key is "" or ends with "/"
    input_filter: JsonPathFilter
    join_input: bool
    output_filter: JsonPathFilter
    max_payload_bytes: int | None
    accept: str
    record_separator: bytes
    model_dir: str | None
    role_arn: str
    hold_until_stopped: bool = False

    @classmethod
    def from_request(
        cls, request: Mapping[str, Any], *, model_environment: Mapping[str, str], role_arn: str = ""
    ) -> TransformSpec:
        """request: CreateTransformJob's parameters, as sent (TransformJobName, TransformInput, …)."""
        transform_input = request.get("TransformInput") or {}
        source = (transform_input.get("DataSource") or {}).get("S3DataSource") or {}
        data_type = source.get("S3DataType", "S3Prefix")
        if data_type not in {"S3Prefix", "ManifestFile"}:
            raise _unsupported(f"S3DataType {data_type}")
        if transform_input.get("SplitType") != "Line":
            raise _unsupported(
                f"SplitType {transform_input.get('SplitType', 'None')} (JSON Lines needs Line)"
            )
        if transform_input.get("CompressionType", "None") != "None":
            raise _unsupported(f"CompressionType {transform_input['CompressionType']}")
        content_type = transform_input.get("ContentType") or "application/json"
        if content_type.split(";")[0].strip() not in JSON_CONTENT_TYPES:
            raise _unsupported(f"ContentType {content_type}")
        output = request.get("TransformOutput") or {}
        try:
            input_location = S3Location.parse(source.get("S3Uri", ""))
            output_location = S3Location.parse(output.get("S3OutputPath", ""))
        except ValueError as error:
            raise TransformRequestError(str(error)) from error
        processing = request.get("DataProcessing") or {}
        payload_mb = request.get("MaxPayloadInMB")
        payload_mb = DEFAULT_MAX_PAYLOAD_MB if payload_mb is None else int(payload_mb)
        environment = {**model_environment, **(request.get("Environment") or {})}
        try:
            input_filter = JsonPathFilter(processing.get("InputFilter") or "$")
            output_filter = JsonPathFilter(processing.get("OutputFilter") or "$")
        except JsonPathError as error:
            raise TransformRequestError(str(error)) from error
        output_prefix = output_location.key.rstrip("/")
        return cls(
            job_name=str(request.get("TransformJobName", "")),
            data_type=data_type,
            input_uri=input_location.uri,
            output=S3Location(output_location.bucket, f"{output_prefix}/" if output_prefix else ""),
            input_filter=input_filter,
            join_input=processing.get("JoinSource", "None") == "Input",
            output_filter=output_filter,
            # MaxPayloadInMB 0 means "no limit" (streaming containers).
            max_payload_bytes=payload_mb * 1024 * 1024 if payload_mb > 0 else None,
            accept=output.get("Accept") or "application/json",
            record_separator=b"\n" if output.get("AssembleWith", "None") == "Line" else b"",
            model_dir=environment.get(MODEL_DIR_VARIABLE) or None,
            role_arn=role_arn,
            hold_until_stopped=environment.get(HOLD_VARIABLE, "").lower() == "true",
        )


def _unsupported(what: str) -> TransformRequestError:
    return TransformRequestError(f"The local Batch Transform emulator does not support {what}.")
