"""Bedrock batch inference's data semantics, run on the local embedding model.

Following https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html and
batch-inference-results.html:
- every `.jsonl` object under the input S3 prefix is read; a line is `{"recordId", "modelInput"}`;
- for each input object, `<output s3Uri>/<job id>/<input name>.out` holds one line per record,
  `{"recordId", "modelInput", "modelOutput"}` or, for a failed record, `{"recordId", "modelInput",
  "error": {"errorCode", "errorMessage"}}`, in an order that does not follow the input (shuffled here);
- `<output s3Uri>/<job id>/manifest.json.out` holds totalRecordCount, processedRecordCount,
  successRecordCount, errorRecordCount, inputTokenCount, outputTokenCount;
- a job with fewer records than the minimum per job, or more than the maximum, fails validation.

Model families (the `modelInput` bodies of InvokeModel):
- Titan Text Embeddings V2 (`amazon.titan-embed-text-v2*`): `{"inputText", "dimensions", "normalize"}` ->
  `{"embedding", "embeddingsByType": {"float"}, "inputTextTokenCount"}`;
- Cohere Embed (`cohere.embed*`): `{"texts": [...], "input_type", "truncate"}` ->
  `{"id", "embeddings", "response_type": "embeddings_floats", "texts"}`;
- Anthropic Claude messages (`anthropic.claude*`): `{"anthropic_version", "max_tokens", "messages"}` ->
  `{"id", "type": "message", "role": "assistant", "content": [{"type": "text", "text"}], "stop_reason",
  "usage"}`.
The vectors are the local MiniLM's, in the size Titan's `dimensions` asks for (1024 when it names none, as
the service does; local/model/output_size.py says how 384 become 256, 512 or 1024). There is no local
language model: the Claude "summary" is the text's leading sentences cut to max_tokens words, so the
format and the field mapping are real, the prose is not. (The text is the prompt's last paragraph.)
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from local.emulators.batching import EmbedRequest, embed_in_batches
from local.emulators.faults import Faults
from local.emulators.input_limits import titan_refusal
from local.emulators.jobs import JobContext, JobFailed, JobStopped
from local.emulators.s3_io import S3Client, S3Location, S3ObjectWriter, iter_lines, list_keys
from local.model import Embedder
from local.model.output_size import resize

TITAN = "titan"
COHERE = "cohere"
CLAUDE = "claude"
_FAMILIES = (("amazon.titan-embed-text-v2", TITAN), ("cohere.embed", COHERE), ("anthropic.claude", CLAUDE))
MANIFEST_NAME = "manifest.json.out"
# Titan Text Embeddings V2's output sizes, 1024 by default ("Amazon Titan Text Embeddings models",
# https://docs.aws.amazon.com/bedrock/latest/userguide/titan-embedding-models.html; the request's
# `dimensions`: "Amazon Titan Embeddings G1 - Text", .../userguide/model-parameters-titan-embed-text.html)
TITAN_DIMENSIONS = (256, 512, 1024)
TITAN_DEFAULT_DIMENSIONS = 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
HOLD_POLL_SECONDS = 0.05
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def model_family(model_id: str) -> str | None:
    """The family of a model id or inference profile id (`us.anthropic.claude…`), None if unsupported."""
    bare = model_id.split(":", 1)[0].rsplit("/", 1)[-1]
    for prefix, family in _FAMILIES:
        if bare.startswith(prefix) or bare.split(".", 1)[-1].startswith(prefix):
            return family
    return None


class RecordError(ValueError):
    """One record's modelInput is not what the model takes: that record fails, the job goes on."""


@dataclass
class _Record:
    record_id: str
    model_input: Any
    texts: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Counts:
    total: int = 0
    success: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def manifest(self) -> dict[str, int]:
        return {
            "totalRecordCount": self.total,
            "processedRecordCount": self.success + self.errors,
            "successRecordCount": self.success,
            "errorRecordCount": self.errors,
            "inputTokenCount": self.input_tokens,
            "outputTokenCount": self.output_tokens,
        }


def _tokens(text: str) -> int:
    return len(text.split())


class InvocationWork:
    """One model invocation job: every input object through the model into its .out object."""

    def __init__(
        self,
        *,
        job_id: str,
        family: str,
        input_uri: str,
        output_uri: str,
        s3: S3Client,
        load_embedder: Callable[[], Embedder],
        faults: Faults,
        on_counts: Callable[[Counts], None] = lambda _counts: None,
        live_faults: Callable[[], Faults] | None = None,
    ) -> None:
        self._job_id = job_id
        self._family = family
        self._input = S3Location.parse(input_uri)
        output = S3Location.parse(output_uri)
        prefix = output.key if not output.key or output.key.endswith("/") else f"{output.key}/"
        self._output = S3Location(output.bucket, f"{prefix}{job_id}/")
        self._s3 = s3
        self._load_embedder = load_embedder
        self._faults = faults
        self._live_faults = live_faults or (lambda: faults)
        self._on_counts = on_counts
        self.counts = Counts()
        self._shuffle = random.Random(job_id)  # a different order per job, reproducible per job

    def __call__(self, context: JobContext) -> None:
        try:
            keys = self._input_keys()
            self._validate(keys)
            if self._faults.hold_jobs:
                context.wait_for_stop()
            self._hold_while_marked(context, keys)
            embedder = self._load_embedder() if self._family != CLAUDE else None
            for key in keys:
                context.check_stop()
                self._run_object(context, embedder, key)
        except JobStopped:
            self._write_manifest()  # a stopped job keeps what it finished, and says how much
            raise
        except ClientError as error:
            raise JobFailed(f"An S3 request of the job failed: {error}") from error
        self._write_manifest()
        if self.counts.total and self.counts.errors == self.counts.total:
            total = self.counts.total
            raise JobFailed(f"All {total} records failed; see the error field of each output line")

    def _input_keys(self) -> list[str]:
        keys = sorted(
            key for key in list_keys(self._s3, self._input.bucket, self._input.key) if key.endswith(".jsonl")
        )
        if not keys:
            raise JobFailed(f"No .jsonl input files found at {self._input.uri}")
        return keys

    def _hold_while_marked(self, context: JobContext, keys: list[str]) -> None:
        marker = self._faults.hold_records_containing
        if not marker or not any(
            marker.encode() in line
            for key in keys
            for line in iter_lines(self._s3, S3Location(self._input.bucket, key), MAX_LINE_BYTES)
        ):
            return
        while self._live_faults().hold_records_containing == marker:
            context.check_stop()
            time.sleep(HOLD_POLL_SECONDS)

    def _validate(self, keys: list[str]) -> None:
        records = sum(
            1
            for key in keys
            for line in iter_lines(self._s3, S3Location(self._input.bucket, key), MAX_LINE_BYTES)
            if line.strip()
        )
        minimum = self._faults.min_records_per_job
        if records < minimum:
            raise JobFailed(
                f"The job has {records} records; a batch inference job needs at least {minimum} records"
            )
        maximum = self._faults.max_records_per_job
        if records > maximum:
            raise JobFailed(
                f"The job has {records} records, more than the quota of {maximum} records per batch "
                "inference job"
            )

    def _run_object(self, context: JobContext, embedder: Embedder | None, key: str) -> None:
        folder = self._input.key[: self._input.key.rfind("/") + 1]  # outputs keep the path below it
        name = key[len(folder) :]
        lines: list[bytes] = []
        dropped = self._faults.drop_records_containing
        records = [
            record
            for record in self._records(key)
            # A dropped record is counted as a success, yet has no output line
            if not (dropped and record.error is None and any(dropped in text for text in record.texts))
        ]
        ready = [record for record in records if record.error is None]
        for record in records:
            if record.error is not None:
                lines.append(self._error_line(record, record.error))
        if embedder is not None:
            requests = (EmbedRequest(record, record.texts, size=0) for record in ready)
            for record, vectors in embed_in_batches(requests, embedder, before_batch=context.check_stop):
                lines.append(self._embedding_line(record, vectors))
        else:
            for record in ready:
                context.check_stop()
                lines.append(self._message_line(record))
        self._shuffle.shuffle(lines)  # Bedrock's output order does not follow the input
        target = S3Location(self._output.bucket, f"{self._output.key}{name}.out")
        writer = S3ObjectWriter(self._s3, target, "application/jsonl")
        try:
            for line in lines:
                writer.write(line + b"\n")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        context.add_progress(done=self.counts.success, failed=self.counts.errors)
        self._on_counts(self.counts)

    def _records(self, key: str) -> Iterator[_Record]:
        lines = iter_lines(self._s3, S3Location(self._input.bucket, key), MAX_LINE_BYTES)
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            self.counts.total += 1
            try:
                line = json.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError("not a JSON object")
            except ValueError as error:
                yield _Record(f"line{number}", None, error=f"Malformed input line {number}: {error}")
                continue
            record_id = str(line.get("recordId") or f"{number:011d}")  # Bedrock adds a missing recordId
            record = _Record(record_id, line.get("modelInput"))
            try:
                record.texts = self._texts(record.model_input)
            except RecordError as error:
                record.error = f"Malformed input request: {error}, please reformat your input and try again."
            else:
                record.error = input_refusal(self._family, record.texts)
            marker = self._faults.fail_records_containing
            if record.error is None and marker and any(marker in text for text in record.texts):
                record.error = f"The model could not process this record (emulator fault: {marker!r})"
            yield record

    def _texts(self, body: Any) -> list[str]:
        return texts_of(self._family, body)

    def _error_line(self, record: _Record, message: str) -> bytes:
        self.counts.errors += 1
        return _dump(
            {
                "recordId": record.record_id,
                "modelInput": record.model_input,
                "error": {"errorCode": 400, "errorMessage": message},
            }
        )

    def _embedding_line(self, record: _Record, vectors: np.ndarray) -> bytes:
        self.counts.success += 1
        output = embedding_output(self._family, record.model_input, record.texts, vectors)
        self.counts.input_tokens += sum(_tokens(text) for text in record.texts)
        return _dump({"recordId": record.record_id, "modelInput": record.model_input, "modelOutput": output})

    def _message_line(self, record: _Record) -> bytes:
        self.counts.success += 1
        # The prompt's last paragraph: instructions usually come first, the text to work on last.
        text = " ".join(record.texts).rsplit("\n\n", 1)[-1]
        max_words = int(record.model_input.get("max_tokens", 256))
        summary = " ".join(" ".join(_SENTENCE_END.split(text)[:2]).split()[:max_words])
        usage = {"input_tokens": _tokens(text), "output_tokens": _tokens(summary)}
        self.counts.input_tokens += usage["input_tokens"]
        self.counts.output_tokens += usage["output_tokens"]
        output = {
            "id": f"msg_bdrk_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [{"type": "text", "text": summary}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        return _dump({"recordId": record.record_id, "modelInput": record.model_input, "modelOutput": output})

    def _write_manifest(self) -> None:
        body = json.dumps(self.counts.manifest()).encode()
        self._s3.put_object(Bucket=self._output.bucket, Key=f"{self._output.key}{MANIFEST_NAME}", Body=body)
        self._on_counts(self.counts)


def texts_of(family: str, body: Any) -> list[str]:
    """The texts of one InvokeModel body of `family`; RecordError for a body the model does not take."""
    if not isinstance(body, dict):
        raise RecordError("#: expected type: JSONObject")
    if family == TITAN:
        text = body.get("inputText")
        if not isinstance(text, str):
            raise RecordError("#: required key [inputText] not found")
        unknown = set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}
        if unknown:
            raise RecordError(f"#: extraneous key [{sorted(unknown)[0]}] is not permitted")
        if body.get("dimensions", TITAN_DEFAULT_DIMENSIONS) not in TITAN_DIMENSIONS:
            raise RecordError(f"#/dimensions: {body['dimensions']} is not a valid enum value")
        return [text]
    if family == COHERE:
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise RecordError("texts must be a list of strings")
        if not 0 < len(texts) <= 96:
            raise RecordError("texts must hold between 1 and 96 strings")
        return texts
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or "max_tokens" not in body:
        raise RecordError("messages and max_tokens are required")
    texts = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return texts


def input_refusal(family: str, texts: list[str]) -> str | None:
    """Why the model refuses these texts for their length (input_limits.py), None when it takes them."""
    if family != TITAN:
        return None
    return next((reason for reason in map(titan_refusal, texts) if reason), None)


def embedding_output(
    family: str, body: dict[str, Any], texts: list[str], vectors: np.ndarray
) -> dict[str, Any]:
    """An embedding model's answer to one InvokeModel body, from the local model's vectors of its texts."""
    tokens = sum(_tokens(text) for text in texts)
    if family == TITAN:
        sized = resize(
            vectors, body.get("dimensions", TITAN_DEFAULT_DIMENSIONS), normalize=body.get("normalize", True)
        )
        vector = sized[0].tolist()
        return {
            "embedding": vector,
            "embeddingsByType": {"float": vector},
            "inputTextTokenCount": tokens,
        }
    return {
        "id": str(uuid.uuid4()),
        "embeddings": vectors.tolist(),
        "response_type": "embeddings_floats",
        "texts": texts,
    }


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
