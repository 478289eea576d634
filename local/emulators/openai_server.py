"""The OpenAI Batch API on 127.0.0.1, run on the local embedding model.

    python -m local.emulators.openai_server --port 4610 --aws-url http://127.0.0.1:4599

Routes (https://platform.openai.com/docs/api-reference/files, .../batch): POST /v1/files (multipart,
purpose=batch), GET /v1/files/{id}, GET /v1/files/{id}/content, POST /v1/batches, GET /v1/batches,
GET /v1/batches/{id}, POST /v1/batches/{id}/cancel, and POST /v1/embeddings, the real-time call
(https://platform.openai.com/docs/api-reference/embeddings/create) that embeds knn queries. Errors are
`{"error": {message, type, code}}` with the API's status codes (401 for a wrong key, 404 for an unknown
id), so the official SDK works unchanged.

Semantics: a batch moves validating -> in_progress -> finalizing -> completed; cancel moves it to
cancelling -> cancelled and keeps the results so far in the output file. Successes go to the output file,
failed requests to a separate error file (`response: null`, `error: {code, message}`), each in shuffled
order; `request_counts` is the progress. Faults (faults.py): `throttle_creates` fails the next batches with
`token_limit_exceeded` (the enqueued-token limit: a failed batch, not a 429), `fail_records_containing`
fails matching requests, `hold_jobs` keeps batches in progress, `fail_status_calls` answers 500. An input
over the model's 8,191 tokens is refused as the API refuses it (input_limits.py).

Embeddings have the model's size: `dimensions` if the request names it, else the model's full size
(text-embedding-3-small 1536, -large 3072, ada-002 1536; any other model the local MiniLM's 384), made
from the local MiniLM's vectors as local/model/output_size.py says.

The API key is the SecretString of a Secrets Manager secret in the AWS emulator (default name
`osbatch/openai-api-key`), read at each request, so the backend and this server share it the AWS way.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from local.emulators.batching import MODEL_INPUTS, EmbedRequest, embed_in_batches
from local.emulators.faults import FAULTS, FAULTS_PATH, FaultSettings
from local.emulators.input_limits import openai_refusal
from local.emulators.jobs import JobContext, JobFailed, JobRecord, JobRunner, JobState, JobStopped
from local.model import Embedder
from local.model.output_size import MODEL_DIMENSIONS as MODEL_DIMENSIONS_OF_THE_LOCAL_MODEL
from local.model.output_size import resize

LOG = logging.getLogger("local.emulators.openai")
DEFAULT_SECRET = "osbatch/openai-api-key"
HEALTH_PATH = "/_osbatch/health"  # as local.aws.HEALTH_PATH, which the runtime's ready check uses
JSON = "application/json"
_ROUTE = re.compile(r"^/v1/(files|batches|embeddings)(?:/([^/]+))?(?:/(content|cancel))?/?$")
# The models' full output sizes ("Vector embeddings", https://platform.openai.com/docs/guides/embeddings);
# ada-002 takes no `dimensions`.
MODEL_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
FIXED_SIZE_MODELS = frozenset({"text-embedding-ada-002"})


def output_dimensions(body: dict[str, Any]) -> int:
    """The size of the vectors an embeddings request asks for; ApiError for one the model cannot give."""
    model = str(body.get("model") or "")
    full = MODEL_DIMENSIONS.get(model, MODEL_DIMENSIONS_OF_THE_LOCAL_MODEL)
    requested = body.get("dimensions")
    if requested is None:
        return full
    if model in FIXED_SIZE_MODELS:
        raise ApiError(400, "invalid_request_error", "This model does not support specifying dimensions.")
    if not isinstance(requested, int) or isinstance(requested, bool) or not 1 <= requested <= full:
        raise ApiError(400, "invalid_request_error", f"Invalid 'dimensions': {requested!r}; at most {full}.")
    return requested


def embeddings_response(body: dict[str, Any], vectors: np.ndarray, texts: list[str]) -> dict[str, Any]:
    """The embeddings endpoint's answer (the same as a batch line's response body)."""
    sized = resize(vectors, output_dimensions(body))
    data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(sized)]
    tokens = sum(len(text.split()) for text in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


class BatchStore:
    def __init__(self, load_embedder: Callable[[], Embedder], faults: FaultSettings = FAULTS) -> None:
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._load_embedder = load_embedder
        self.faults = faults
        self.runner = JobRunner(name="openai")

    def add_file(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(_id("file"), filename, purpose, data)
        with self._lock:
            self.files[stored.id] = stored
        return stored

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            raise ApiError(400, "invalid_request_error", f"No file with id '{file_id}'", "invalid_file")
        if body.get("endpoint") not in {"/v1/embeddings", "/v1/chat/completions", "/v1/completions"}:
            raise ApiError(400, "invalid_request_error", f"Invalid endpoint {body.get('endpoint')}")
        if body.get("completion_window") != "24h":
            raise ApiError(400, "invalid_request_error", "completion_window must be '24h'")
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": _id("batch"),
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata") or None,
        }
        with self._lock:
            self.batches[batch["id"]] = batch
        throttled = self.faults.take("throttle_creates")
        work = BatchWork(self, batch, self.files[file_id].data, self.faults, throttled)
        self.runner.start(batch["id"], work, on_change=lambda record: self._show(batch, record))
        return batch

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        if self.faults.take("fail_status_calls"):
            raise ApiError(500, "server_error", "The server had an error (emulator fault)")
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, "invalid_request_error", f"No batch found with id '{batch_id}'.")
        return batch

    def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = self.get_batch(batch_id)
        if batch["status"] in {"validating", "in_progress", "finalizing"}:
            self.runner.stop(batch_id)
        return batch

    def _show(self, batch: dict[str, Any], record: JobRecord) -> None:
        now = int(time.time())
        if record.state is JobState.RUNNING:
            batch.update(status="in_progress", in_progress_at=now)
        elif record.state is JobState.STOPPING:
            batch.update(status="cancelling", cancelling_at=now)
        elif record.state is JobState.STOPPED:
            batch.update(status="cancelled", cancelled_at=now)
        elif record.state is JobState.FAILED:
            if not batch.get("errors"):
                error = {
                    "code": "server_error",
                    "message": record.failure_reason,
                    "param": None,
                    "line": None,
                }
                batch["errors"] = {"object": "list", "data": [error]}
            batch.update(status="failed", failed_at=now)
        else:
            batch.update(status="completed", completed_at=now)


class BatchWork:
    def __init__(
        self, store: BatchStore, batch: dict[str, Any], data: bytes, faults: FaultSettings, throttled: bool
    ) -> None:
        self._store, self._batch, self._data = store, batch, data
        self._faults = faults.snapshot()
        self._throttled = throttled
        self._outputs: list[bytes] = []
        self._errors: list[bytes] = []

    def __call__(self, context: JobContext) -> None:
        lines = [json.loads(line) for line in self._data.splitlines() if line.strip()]
        self._batch["request_counts"]["total"] = len(lines)
        if self._throttled:
            message = (
                "Enqueued token limit reached for this model in organization. "
                "Try again once some batches complete."
            )
            error = {"code": "token_limit_exceeded", "message": message, "param": None, "line": None}
            self._batch["errors"] = {"object": "list", "data": [error]}
            raise JobFailed(message)
        if self._faults.hold_jobs:
            context.wait_for_stop()
        try:
            embedder = self._store._load_embedder() if self._batch["endpoint"] == "/v1/embeddings" else None
            self._run(context, lines, embedder)
        except JobStopped:
            self._finish()  # a cancelled batch keeps its partial results
            raise
        self._batch.update(status="finalizing", finalizing_at=int(time.time()))
        self._finish()

    def _run(self, context: JobContext, lines: list[dict[str, Any]], embedder: Embedder | None) -> None:
        ready = []
        for line in lines:
            body = line.get("body") or {}
            texts = (
                texts_of(line) if embedder else [str(m.get("content", "")) for m in body.get("messages", [])]
            )
            marker = self._faults.fail_records_containing
            dropped = self._faults.drop_records_containing
            size_error = _size_error(body) if embedder else None
            if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
                self._error(line, "invalid_request", "'input' must be a string or a list of strings")
            elif size_error is not None:
                self._error(line, "invalid_request", size_error)
            elif embedder and (too_long := openai_refusal(texts)) is not None:
                self._refused(line, too_long)
            elif dropped and any(dropped in text for text in texts):
                self._batch["request_counts"]["completed"] += 1  # counted, yet absent from the output
            elif marker and any(marker in text for text in texts):
                message = f"The model could not process this request (emulator fault: {marker!r})"
                self._error(line, "server_error", message)
            else:
                ready.append((line, texts))
        if embedder is not None:
            requests = (EmbedRequest(line, texts, size=0) for line, texts in ready)
            for line, vectors in embed_in_batches(requests, embedder, before_batch=context.check_stop):
                self._ok(line, embeddings_response(line["body"], vectors, texts_of(line)))
        else:
            for line, texts in ready:
                context.check_stop()
                text = " ".join(texts).rsplit("\n\n", 1)[-1]
                summary = " ".join(re.split(r"(?<=[.!?])\s+", text)[:2])
                reply = {"role": "assistant", "content": summary}
                choice = {"index": 0, "message": reply, "finish_reason": "stop"}
                completion = {"id": _id("chatcmpl"), "object": "chat.completion", "choices": [choice]}
                self._ok(line, {**completion, "model": line["body"].get("model")})

    def _ok(self, line: dict[str, Any], body: dict[str, Any]) -> None:
        response = {"status_code": 200, "request_id": secrets.token_hex(16), "body": body}
        request = {"id": _id("batch_req"), "custom_id": line.get("custom_id")}
        self._outputs.append(_dump({**request, "response": response, "error": None}))
        self._batch["request_counts"]["completed"] += 1

    def _error(self, line: dict[str, Any], code: str, message: str) -> None:
        error = {"code": code, "message": message}
        request = {"id": _id("batch_req"), "custom_id": line.get("custom_id")}
        self._errors.append(_dump({**request, "response": None, "error": error}))
        self._batch["request_counts"]["failed"] += 1

    def _refused(self, line: dict[str, Any], message: str) -> None:
        """A request the endpoint answers 400: in the error file with that response, as the Batch API
        writes a failed request (the status code and the endpoint's error body)."""
        details = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        response = {"status_code": 400, "request_id": secrets.token_hex(16), "body": {"error": details}}
        request = {"id": _id("batch_req"), "custom_id": line.get("custom_id")}
        self._errors.append(_dump({**request, "response": response, "error": None}))
        self._batch["request_counts"]["failed"] += 1

    def _finish(self) -> None:
        shuffle = random.Random(self._batch["id"])  # the order does not follow the input
        for lines, field_name in ((self._outputs, "output_file_id"), (self._errors, "error_file_id")):
            if lines:
                shuffle.shuffle(lines)
                name = f"{self._batch['id']}_{field_name}.jsonl"
                stored = self._store.add_file(name, "batch_output", b"".join(lines))
                self._batch[field_name] = stored.id


def _size_error(body: dict[str, Any]) -> str | None:
    try:
        output_dimensions(body)
    except ApiError as error:
        return error.message
    return None


def texts_of(line: dict[str, Any]) -> Any:
    """An embeddings request's `input`: one string or a list of them (anything else is invalid)."""
    value = (line.get("body") or {}).get("input")
    return [value] if isinstance(value, str) else value


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code


def make_handler(store: BatchStore, api_key: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug(format, *args)

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method: str) -> None:
            try:
                if self.path == HEALTH_PATH:
                    self._send(200, b'{"status":"ok"}')
                    return
                if self.path == FAULTS_PATH:  # fault injection for tests, as in the AWS emulator
                    self._fault_settings(method)
                    return
                if self.headers.get("Authorization", "") != f"Bearer {api_key()}":
                    message = "Incorrect API key provided."
                    raise ApiError(401, "invalid_request_error", message, "invalid_api_key")
                status, body, kind = self._route(method)
                self._send(status, body, kind)
            except ApiError as error:
                details = {"message": error.message, "type": error.kind, "param": None, "code": error.code}
                payload = {"error": details}
                self._send(error.status, json.dumps(payload).encode())

        def _fault_settings(self, method: str) -> None:
            try:
                if method == "POST":
                    store.faults.update(**json.loads(self._body() or b"{}"))
                elif method == "DELETE":
                    self._body()
                    store.faults.reset()
                    MODEL_INPUTS.reset()
            except (ValueError, TypeError) as error:
                raise ApiError(400, "invalid_request_error", str(error)) from error
            # What reached the model, as the AWS emulator's fault route reports it (faults.py)
            seen = {"model_inputs": MODEL_INPUTS.count, "model_input_log": list(MODEL_INPUTS.latest)}
            self._send(200, json.dumps({**asdict(store.faults.snapshot()), **seen}).encode())

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, method: str) -> tuple[int, bytes, str]:
            match = _ROUTE.match(self.path.split("?", 1)[0])
            if not match:
                raise ApiError(404, "invalid_request_error", f"Unknown request URL: {method} {self.path}")
            kind, item, action = match.groups()
            if kind == "files" and method == "POST" and item is None:
                filename, purpose, data = _multipart(self.headers.get("Content-Type", ""), self._body())
                return 200, json.dumps(store.add_file(filename, purpose, data).describe()).encode(), JSON
            if kind == "files" and method == "GET" and item:
                stored = store.files.get(item)
                if stored is None:
                    raise ApiError(404, "invalid_request_error", f"No such File object: {item}")
                if action == "content":
                    return 200, stored.data, "application/octet-stream"
                return 200, json.dumps(stored.describe()).encode(), "application/json"
            if kind == "batches" and method == "POST" and item is None:
                created = store.create_batch(json.loads(self._body() or b"{}"))
                return 200, json.dumps(created).encode(), JSON
            if kind == "batches" and method == "GET" and item is None:
                batches = list(reversed(store.batches.values()))
                listing = {
                    "object": "list",
                    "data": batches,
                    "first_id": None,
                    "last_id": None,
                    "has_more": False,
                }
                return 200, json.dumps(listing).encode(), "application/json"
            if kind == "batches" and method == "GET" and item:
                return 200, json.dumps(store.get_batch(item)).encode(), "application/json"
            if kind == "embeddings" and method == "POST" and item is None:
                return 200, json.dumps(self._embeddings(json.loads(self._body() or b"{}"))).encode(), JSON
            if kind == "batches" and method == "POST" and action == "cancel":
                self._body()
                return 200, json.dumps(store.cancel(str(item))).encode(), "application/json"
            raise ApiError(404, "invalid_request_error", f"Unknown request URL: {method} {self.path}")

        def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
            texts = texts_of({"body": body})
            if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
                raise ApiError(400, "invalid_request_error", "'input' must be a string or a list of strings")
            output_dimensions(body)  # a size the model cannot give fails before the model runs
            too_long = openai_refusal(texts)
            if too_long is not None:  # the model's input limits (local/emulators/input_limits.py)
                raise ApiError(400, "invalid_request_error", too_long)
            return embeddings_response(body, store._load_embedder().embed(texts), texts)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


def _multipart(content_type: str, body: bytes) -> tuple[str, str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename() or ""
        payload = part.get_payload(decode=True)
        fields[str(name)] = (filename, payload if isinstance(payload, bytes) else b"")
    if "file" not in fields:
        raise ApiError(400, "invalid_request_error", "Missing required parameter: 'file'.")
    purpose = fields.get("purpose", ("", b""))[1].decode()
    if purpose != "batch":
        raise ApiError(400, "invalid_request_error", "This emulator accepts purpose 'batch' only.")
    return fields["file"][0], purpose, fields["file"][1]


def serve(
    port: int, store: BatchStore, api_key: Callable[[], str], host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    """Start the server on a daemon thread; returns it (call shutdown() to stop)."""
    server = ThreadingHTTPServer((host, port), make_handler(store, api_key))
    threading.Thread(target=server.serve_forever, name=f"openai-{port}", daemon=True).start()
    return server


def secret_key(aws_url: str, secret_id: str = DEFAULT_SECRET) -> Callable[[], str]:
    import local.aws

    client = local.aws.session().client("secretsmanager", endpoint_url=aws_url)

    def read() -> str:
        try:
            return str(client.get_secret_value(SecretId=secret_id)["SecretString"])
        except Exception:  # no secret yet: no key is right
            return secrets.token_hex(32)

    return read


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.emulators.openai_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--aws-url", required=True)
    parser.add_argument("--secret-id", default=DEFAULT_SECRET)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from local.model import load_embedder

    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port),
        make_handler(BatchStore(lambda: load_embedder(None)), secret_key(args.aws_url, args.secret_id)),
    )
    LOG.info("OpenAI Batch API emulator on http://127.0.0.1:%s/v1", args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
