"""The OpenAI Batch API (https://platform.openai.com/docs/api-reference/batch).

Each prepared part (at most 50,000 requests and 200 MB, the per-file limits) is uploaded as a file and
becomes one batch: one remote job of the upload (job_limits allow one part per job). Which batch serves the
part is kept in a small ledger object next to that remote job's output (`batches.json`), so a re-run of
StartJob uploads nothing twice and a batch replaced after `token_limit_exceeded` is followed by its
replacement.

Record ids: `custom_id` is `line-<n>`, the record's line in the user's file, for the reason given in
backends/bedrock.py: the output carries custom_id and the response, not the record, so PlanIngest joins
the results (output file and error file alike) back onto the source records Prepare kept.

`token_limit_exceeded` (the enqueued-token limit) fails a batch after creation rather than answering 429;
it is throttling, so the part's batch is created again on later polls until retry_time_window has passed
since the first such failure, and then the job FAILS with that error.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import urllib3.exceptions
from botocore.exceptions import ClientError

from osbatch.backends.base import (
    THROTTLED_PAST_WINDOW,
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
from osbatch.backends.openai_http import OpenAIError, OpenAIHttp
from osbatch.config import OpenAIJobConfig
from osbatch.models import JobStateName, RemoteJob
from osbatch.s3uri import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LEDGER_NAME = "batches.json"
RESULT_KEY = "response"
TOKEN_LIMIT = "token_limit_exceeded"
RUNNING = frozenset({"validating", "in_progress", "finalizing"})
_CUSTOM_ID = re.compile(r"^line-(\d+)(?:-(\d+))?$")
# One embeddings request's `input` list: at most 2,048 inputs and 300,000 tokens summed over them ("Create
# embeddings", platform.openai.com/docs/api-reference/embeddings/create). Tokens are bounded by UTF-8 bytes
# (osbatch.chunking.tokens), so a request's passages stay under 300,000 bytes.
MAX_INPUTS_PER_REQUEST = 2048
MAX_INPUT_BYTES_PER_REQUEST = 300_000


def custom_id(line: int, passage: int | None = None) -> str:
    """`line-<n>` for a whole record; `line-<n>-<first passage>` for a request carrying passages."""
    return f"line-{line}" if passage is None else f"line-{line}-{passage}"


def line_of(value: Any) -> int | None:
    match = _CUSTOM_ID.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def passage_of(value: Any) -> int | None:
    match = _CUSTOM_ID.match(value) if isinstance(value, str) else None
    return int(match.group(2)) if match and match.group(2) is not None else None


def requests_of(passages: Sequence[PassageInput]) -> list[list[PassageInput]]:
    """A record's passages in as few embeddings requests as the per-request limits allow, in order."""
    requests: list[list[PassageInput]] = []
    size = 0
    for passage in passages:
        length = len(passage.text.encode("utf-8", errors="surrogatepass"))
        if (
            not requests
            or len(requests[-1]) >= MAX_INPUTS_PER_REQUEST
            or size + length > MAX_INPUT_BYTES_PER_REQUEST
        ):
            requests.append([])
            size = 0
        requests[-1].append(passage)
        size += length
    return requests


def request_body(settings: OpenAIJobConfig, text: str) -> dict[str, Any]:
    if settings.endpoint == "/v1/embeddings":
        body: dict[str, Any] = {"model": settings.model, "input": text}
        if settings.dimensions:
            body["dimensions"] = settings.dimensions
        return body
    prompt = settings.prompt.replace("{text}", text)  # not str.format: the text may hold braces
    return {
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }


class OpenAIBackend:
    joins_source = True
    result_key = RESULT_KEY

    def __init__(
        self,
        settings: OpenAIJobConfig,
        http: OpenAIHttp,
        s3: S3Client,
        *,
        retry_window_seconds: int,
        now: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._http = http
        self._s3 = s3
        self._window = retry_window_seconds
        self._now = now
        self.limits = InputLimits(settings.max_requests_per_file, settings.max_file_bytes)
        # A batch takes exactly one input file.
        self.job_limits = JobLimits(
            settings.max_requests_per_file, settings.max_file_bytes, max_parts_per_job=1
        )

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        body = request_body(self._settings, text)
        return {"custom_id": custom_id(line), "method": "POST", "url": self._settings.endpoint, "body": body}

    def passage_lines(
        self, line: int, passages: Sequence[PassageInput], holder: TextHolder
    ) -> list[tuple[dict[str, Any], int]]:
        """The embeddings endpoint takes a list of inputs: one request carries a record's passages (more
        only past the per-request limits), and its `data[i]` answers passage first + i."""
        endpoint = self._settings.endpoint
        if endpoint != "/v1/embeddings":  # a chat request takes one text
            return [
                (
                    {
                        "custom_id": custom_id(line, passage.number),
                        "method": "POST",
                        "url": endpoint,
                        "body": request_body(self._settings, passage.text),
                    },
                    1,
                )
                for passage in passages
            ]
        lines = []
        for request in requests_of(passages):
            body = request_body(self._settings, "")
            body["input"] = [passage.text for passage in request]
            first = custom_id(line, request[0].number)
            lines.append(
                ({"custom_id": first, "method": "POST", "url": endpoint, "body": body}, len(request))
            )
        return lines

    def embeddings(self, result: Any) -> list[Any]:
        """An embeddings response's vectors in input order (`data[i].index`)."""
        data = result.get("data") if isinstance(result, dict) else None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise NotAnEmbedding(f"the response holds no embeddings: {str(result)[:200]}")
        return [item.get("embedding") for item in sorted(data, key=lambda item: int(item.get("index", 0)))]

    # --- the ledger: part name -> {file_id, batch_id}, plus when token_limit_exceeded first hit ---

    def _ledger_location(self, output_uri: str) -> tuple[str, str]:
        bucket, prefix = split_s3_uri(output_uri)
        return bucket, f"{prefix}{LEDGER_NAME}"

    def _load(self, output_uri: str) -> dict[str, Any]:
        bucket, key = self._ledger_location(output_uri)
        try:
            ledger: dict[str, Any] = json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError:
            ledger = {}
        ledger.setdefault("parts", {})
        return ledger

    def _save(self, output_uri: str, ledger: dict[str, Any]) -> None:
        bucket, key = self._ledger_location(output_uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(ledger).encode())

    def submit(self, name: str, input_uri: str, output_uri: str) -> RemoteJob:
        ledger = self._load(output_uri)
        bucket, prefix = split_s3_uri(input_uri)
        keys = sorted(
            item["Key"]
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )
        for key in keys:
            part_name = posixpath.basename(key)
            part = ledger["parts"].get(part_name, {})
            try:
                if "file_id" not in part:
                    data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    part["file_id"] = self._http.upload(f"{name}-{part_name}", data)["id"]
                    ledger["parts"][part_name] = part
                    self._save(output_uri, ledger)
                if "batch_id" not in part:
                    part["batch_id"] = self._create(name, part_name, part["file_id"])
                    self._save(output_uri, ledger)
            except OpenAIError as error:
                if error.status == 429:
                    raise BackendThrottled(str(error)) from error
                raise
        batches = [part["batch_id"] for part in ledger["parts"].values()]
        return RemoteJob(id=name, arn=",".join(batches), output_uri=output_uri)

    def _create(self, name: str, part: str, file_id: str) -> str:
        batch = self._http.json(
            "POST",
            "/batches",
            {
                "input_file_id": file_id,
                "endpoint": self._settings.endpoint,
                "completion_window": "24h",
                "metadata": {"osbatch_job": name, "osbatch_part": part},
            },
        )
        return str(batch["id"])

    def _batches(self, remote: RemoteJob, ledger: dict[str, Any]) -> dict[str, dict[str, Any]]:
        try:
            return {
                name: self._http.json("GET", f"/batches/{part['batch_id']}")
                for name, part in ledger["parts"].items()
            }
        except (OpenAIError, urllib3.exceptions.HTTPError) as error:
            raise BackendUnavailable(f"retrieving batches of {remote.id}: {error}") from error

    def status(self, remote: RemoteJob) -> BackendStatus:
        ledger = self._load(remote.output_uri)
        batches = self._batches(remote, ledger)
        throttled = [name for name, batch in batches.items() if _failed_with(batch, TOKEN_LIMIT)]
        if throttled:
            first = ledger.setdefault("throttled_since", self._now())
            if self._now() - first <= self._window:
                for name in throttled:
                    part = ledger["parts"][name]
                    part["batch_id"] = self._create(remote.id, name, part["file_id"])
                self._save(remote.output_uri, ledger)
                return BackendStatus(
                    JobStateName.RUNNING,
                    progress={"remote_status": "in_progress", "resubmitted_after": TOKEN_LIMIT},
                )
            self._save(remote.output_uri, ledger)
        counts = _request_counts(batches)
        statuses = [str(batch["status"]) for batch in batches.values()]
        progress: dict[str, Any] = {"remote_status": ",".join(sorted(set(statuses))), **counts}
        state, reason = _overall(statuses, batches, counts)
        if throttled and state is JobStateName.FAILED:
            progress[THROTTLED_PAST_WINDOW] = True
        return BackendStatus(state, reason=reason, progress=progress)

    def request_counts(self, remote: RemoteJob) -> dict[str, int]:
        """The batches' `request_counts` summed, read only: what a progress display shows while they run
        (OpenAI API reference, "The batch object", platform.openai.com/docs/api-reference/batch/object)."""
        return _request_counts(self._batches(remote, self._load(remote.output_uri)))

    def cancel(self, remote: RemoteJob) -> None:
        ledger = self._load(remote.output_uri)
        for batch in self._batches(remote, ledger).values():
            if batch["status"] in RUNNING:
                self._http.json("POST", f"/batches/{batch['id']}/cancel")

    def outputs(self, remote: RemoteJob) -> list[OutputObject]:
        """Downloads each batch's output and error files into one `<part>.out` object under output_uri.

        The join reads both kinds of line alike (parse_output), so they can share an object."""
        ledger = self._load(remote.output_uri)
        bucket, prefix = split_s3_uri(remote.output_uri)
        objects = []
        for name, batch in sorted(self._batches(remote, ledger).items()):
            data = b"".join(
                _terminated(self._http.content(batch[field]))
                for field in ("output_file_id", "error_file_id")
                if batch.get(field)
            )
            key = f"{prefix}{name}.out"
            self._s3.put_object(Bucket=bucket, Key=key, Body=data)
            objects.append(OutputObject(bucket, key, len(data)))
        return objects

    def parse_output(self, line: dict[str, Any]) -> OutputLine:
        number, passage = line_of(line.get("custom_id")), passage_of(line.get("custom_id"))
        error = line.get("error")
        if isinstance(error, dict):
            return OutputLine(
                number,
                error={"code": error.get("code"), "message": str(error.get("message"))},
                passage=passage,
            )
        response = line.get(RESULT_KEY) or {}
        if response.get("status_code") != 200:
            body_error = (response.get("body") or {}).get("error") or {}
            return OutputLine(
                number,
                error={
                    "code": response.get("status_code"),
                    "message": str(body_error.get("message", "the request failed")),
                },
                passage=passage,
            )
        body = response.get("body")
        # An embeddings (or chat) answer's `usage.prompt_tokens`: what the batch bills as input
        # (https://platform.openai.com/docs/api-reference/embeddings/object, "usage").
        usage = body.get("usage") if isinstance(body, dict) else None
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return OutputLine(
            number,
            result=body,
            input_tokens=tokens if isinstance(tokens, int) else None,
            passage=passage,
        )


def _request_counts(batches: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts = {"total": 0, "completed": 0, "failed": 0}
    for batch in batches.values():
        for name in counts:
            counts[name] += int((batch.get("request_counts") or {}).get(name, 0))
    return counts


def _failed_with(batch: dict[str, Any], code: str) -> bool:
    errors = (batch.get("errors") or {}).get("data") or []
    return batch.get("status") == "failed" and any(error.get("code") == code for error in errors)


def _overall(
    statuses: list[str], batches: dict[str, dict[str, Any]], counts: dict[str, int]
) -> tuple[JobStateName, str | None]:
    if any(status in RUNNING for status in statuses):
        return JobStateName.RUNNING, None
    if "cancelling" in statuses:
        return JobStateName.CANCELLING, None
    for status, state in (("failed", JobStateName.FAILED), ("expired", JobStateName.EXPIRED)):
        if status in statuses:
            errors = [
                f"{error.get('code')}: {error.get('message')}"
                for batch in batches.values()
                for error in ((batch.get("errors") or {}).get("data") or [])
            ]
            return state, "; ".join(errors) or f"a batch is {status}"
    if "cancelled" in statuses:
        return JobStateName.CANCELLED, "cancelled"
    if counts["failed"]:
        return (
            JobStateName.PARTIALLY_COMPLETED,
            f"OpenAI batch: {counts['failed']} of {counts['total']} requests failed (error file)",
        )
    return JobStateName.COMPLETED, None


def _terminated(data: bytes) -> bytes:
    return data if not data or data.endswith(b"\n") else data + b"\n"
