"""SageMaker Batch Transform's data semantics, run on the local embedding model.

What a job does with its input follows AWS's documentation:
- CreateTransformJob (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html),
  TransformInput / S3DataSource (S3Prefix: every object under the prefix; ManifestFile: a JSON list
  `[{"prefix": "s3://…/"}, "relative/key", …]`), TransformOutput (`<S3OutputPath>/<name>.out`; an object is
  uploaded only when all of it succeeded), MaxPayloadInMB (default 6) and BatchStrategy.
- "Associate Prediction Results with Input Records"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html): InputFilter,
  JoinSource=Input (`SageMakerOutput` added to an object, or `{"SageMakerInput", "SageMakerOutput"}`),
  OutputFilter on the joined record.
- "Use Batch Transform" (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html): SplitType
  Line makes each line a record; AssembleWith Line ends each output record with a newline.
- StopTransformJob (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopTransformJob.html):
  a job stopped before it completes stores no output.

The "model container" is a sentence embedder: a JSON string gives one vector, a list of strings a list of
vectors. Which requests can run at all is decided in sagemaker_request.py, when the job is created.

FailureReason wording: SageMaker reports input and model faults as "ClientError: …" and, for batch
transform, usually "ClientError: See job logs for more information" with the details in CloudWatch; a model
container that stops answering as "AlgorithmError: See job logs for more information" (its log: "Unable to
get response from algorithm"). There is no CloudWatch here, so the details follow the prefix instead.

The model runs in this process, or in a container process of the job's own (transform_worker.py: the
emulator's runtime uses those, so a container can be killed mid-job).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from local.emulators.batching import EmbedRequest, embed_in_batches
from local.emulators.faults import Faults
from local.emulators.jobs import JobContext, JobFailed, JobStopped
from local.emulators.jsonpath_filter import JsonPathMiss
from local.emulators.s3_io import (
    LineTooLong,
    S3Client,
    S3Location,
    S3ObjectWriter,
    iter_lines,
    list_keys,
    read_text,
)
from local.emulators.sagemaker_request import MODEL_DIR_VARIABLE, TransformSpec
from local.emulators.transform_worker import WorkerDied
from local.model import Embedder

STATUS = {  # core JobState -> DescribeTransformJob's TransformJobStatus
    "RUNNING": "InProgress",
    "STOPPING": "Stopping",
    "STOPPED": "Stopped",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
}

EmbedderLoader = Callable[[str | None], Embedder]
JobEmbedderLoader = Callable[[str | None, str], Embedder]  # (model folder, job): the job's model


def client_error(detail: str) -> JobFailed:
    return JobFailed(f"ClientError: {detail}")


def algorithm_error(error: WorkerDied, source: S3Location) -> JobFailed:
    return JobFailed(
        "AlgorithmError: See job logs for more information (Unable to get response from algorithm: "
        f"{error.detail} while transforming {source.uri})"
    )


def internal_error(error: BaseException) -> str:
    # SageMaker's wording for its own faults; the cause follows because there is no job log to read.
    cause = f"{type(error).__name__}: {error}"
    return f"InternalServerError: We encountered an internal error. Please try again. ({cause})"


@dataclass(frozen=True)
class _Record:
    value: Any  # the whole input record, for JoinSource=Input
    single_text: bool  # the model input was one string, so the model output is one vector


class TransformWork:
    """One transform job's work: every input object through the model into its .out object."""

    def __init__(
        self,
        spec: TransformSpec,
        s3: S3Client,
        load_embedder: JobEmbedderLoader,
        faults: Faults | None = None,
        hold: Callable[[], None] = lambda: None,
    ) -> None:
        """load_embedder(model_dir, job) gives the job's model; hold() is where the job stands still at
        the faults' hold_transform_after_batches."""
        self._spec = spec
        self._s3 = s3
        self._load_embedder = load_embedder
        self._faults = faults or Faults()
        self._hold = hold
        self._batches = 0

    def __call__(self, context: JobContext) -> None:
        embedder = self._embedder(context.job_id)
        try:
            self._run(context, embedder)
        finally:
            close = getattr(embedder, "close", None)
            if close is not None:
                close()  # the job's container ends with the job

    def _run(self, context: JobContext, embedder: Embedder) -> None:
        if self._spec.hold_until_stopped:
            context.wait_for_stop()
        written: list[S3Location] = []
        try:
            for source, name in self._input_objects():
                context.check_stop()
                target = S3Location(self._spec.output.bucket, f"{self._spec.output.key}{name}.out")
                self._transform_object(context, embedder, source, target)
                written.append(target)
        except JobStopped:
            for target in written:  # a stopped job stores no output (StopTransformJob)
                self._s3.delete_object(Bucket=target.bucket, Key=target.key)
            raise
        except ClientError as error:
            # A missing bucket or a denied request is the caller's setup, reported like SageMaker does.
            raise client_error(f"An S3 request of the job failed: {error}") from error

    def _embedder(self, job: str) -> Embedder:
        try:
            return self._load_embedder(self._spec.model_dir, job)
        except Exception as error:
            where = (
                f"{MODEL_DIR_VARIABLE}={self._spec.model_dir}"
                if self._spec.model_dir
                else "the packaged model"
            )
            raise client_error(f"The model could not be loaded from {where}: {error}") from error

    def _input_objects(self) -> list[tuple[S3Location, str]]:
        """(object, name relative to the input prefix); keys only, so the list stays small."""
        if self._spec.data_type == "ManifestFile":
            return self._manifest_objects()
        source = S3Location.parse(self._spec.input_uri)
        # Output names keep the path below the prefix's folder: in/a/x.jsonl under prefix in/ is a/x.jsonl.
        folder = source.key[: source.key.rfind("/") + 1]
        try:
            keys = [key for key in list_keys(self._s3, source.bucket, source.key) if not key.endswith("/")]
        except ClientError:
            keys = []
        if not keys:
            raise self._no_objects()
        return [(S3Location(source.bucket, key), key[len(folder) :]) for key in sorted(keys)]

    def _manifest_objects(self) -> list[tuple[S3Location, str]]:
        manifest = S3Location.parse(self._spec.input_uri)
        try:
            entries = json.loads(read_text(self._s3, manifest))
            prefix = S3Location.parse(entries[0]["prefix"])
            names = [str(name) for name in entries[1:]]
        except ClientError as error:
            raise client_error(f"Could not read the manifest file {manifest.uri}: {error}") from error
        except (ValueError, LookupError, TypeError) as error:
            expected = '[{"prefix": "s3://…/"}, "relative/key", …]'
            raise client_error(f"The manifest {manifest.uri} is not a JSON list like {expected}") from error
        if not names:
            raise self._no_objects()
        return [(S3Location(prefix.bucket, prefix.key + name), name) for name in names]

    def _no_objects(self) -> JobFailed:
        source = S3Location.parse(self._spec.input_uri)
        return client_error(
            f'No S3 objects found under S3 URL "{self._spec.input_uri}" given in input data source. '
            "Please ensure that the bucket exists in the selected region, that objects exist under that S3 "
            f'prefix, and that the role "{self._spec.role_arn}" has "s3:ListBucket" permissions on bucket '
            f'"{source.bucket}".'
        )

    def _transform_object(
        self, context: JobContext, embedder: Embedder, source: S3Location, target: S3Location
    ) -> None:
        writer = S3ObjectWriter(self._s3, target, content_type=self._spec.accept)
        try:
            batches = embed_in_batches(
                self._requests(source),
                embedder,
                max_bytes=self._spec.max_payload_bytes,
                before_batch=lambda: self._before_batch(context),
            )
            for record, vectors in batches:
                writer.write(self._output_line(record, vectors, source) + self._spec.record_separator)
                context.add_progress(done=1)
            context.check_stop()  # a stop that came during the last batch still leaves no output
            writer.commit()
        except WorkerDied as error:
            writer.abort()  # the object being transformed is not uploaded; those finished before stay
            raise algorithm_error(error, source) from error
        except BaseException:
            writer.abort()
            raise

    def _before_batch(self, context: JobContext) -> None:
        context.check_stop()
        if self._batches == self._faults.hold_transform_after_batches > 0:
            self._hold()
            context.check_stop()
        self._batches += 1

    def _requests(self, source: S3Location) -> Iterator[EmbedRequest[_Record]]:
        limit = self._spec.max_payload_bytes
        try:
            for number, line in enumerate(iter_lines(self._s3, source, max_line_bytes=limit), start=1):
                if not line.strip():
                    continue  # a blank line is no record
                if limit is not None and len(line) > limit:
                    raise client_error(f"Line {number} of {source.uri} is larger than MaxPayloadInMB")
                request = self._request(line, number, source)
                dropped = self._faults.drop_records_containing
                if dropped and any(dropped in text for text in request.texts):
                    continue  # the fault: a record the job completes without, and no line for it
                yield request
        except LineTooLong as error:
            raise client_error(f"{error}: larger than MaxPayloadInMB") from error

    def _request(self, line: bytes, number: int, source: S3Location) -> EmbedRequest[_Record]:
        try:
            value = json.loads(line)
        except ValueError as error:
            raise client_error(f"Line {number} of {source.uri} is not valid JSON: {error}") from error
        try:
            model_input = self._spec.input_filter.select(value)
        except JsonPathMiss as error:
            raise client_error(f"InputFilter {error} in line {number} of {source.uri}") from error
        if isinstance(model_input, str):
            texts, single = [model_input], True
        elif isinstance(model_input, list) and all(isinstance(text, str) for text in model_input):
            texts, single = model_input, False
        else:
            raise client_error(
                f"The model input of line {number} of {source.uri} is {type(model_input).__name__}; "
                "the embedding model takes a JSON string or a list of strings"
            )
        return EmbedRequest(_Record(value, single), texts, size=len(line))

    def _output_line(self, record: _Record, vectors: np.ndarray, source: S3Location) -> bytes:
        output: Any = vectors[0].tolist() if record.single_text else vectors.tolist()
        joined = output
        if self._spec.join_input:
            if isinstance(record.value, dict):
                joined = {**record.value, "SageMakerOutput": output}
            else:
                joined = {"SageMakerInput": record.value, "SageMakerOutput": output}
        try:
            selected = self._spec.output_filter.select(joined)
        except JsonPathMiss as error:
            raise client_error(f"OutputFilter {error} for a record of {source.uri}") from error
        return json.dumps(selected, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
