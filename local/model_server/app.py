"""HTTP for the local models, in the shapes ML Commons connectors send and read.

| route | request body | response body |
|---|---|---|
| POST /embed[?dimensions=N] | `["text", ...]` or `"text"` | `[[float, ...], ...]`, a vector per text (1)(2) |
| POST /similarity | `{"inputs": {"text", "text_pair"}}` or a list | `{"label", "score"}`, or a list |
| POST /generate | `{"prompt": "..."}` | `{"response": "...", "model": "...", "passages": [...]}` |
| GET /health | | `{"status": "ok", "models": [...]}` |

(1) the DJL / SageMaker shape that `connector.post_process.default.embedding` reads.
(2) N long when the connector asks for a size (a Bedrock Titan query model with `dimensions`), made from the
local model's 384 as the Bedrock emulator makes its batch outputs (local/model/output_size.py), so a query
vector meets the documents the emulator embedded.

A request of the wrong shape gets HTTP 400 with `{"error": "..."}`, which ML Commons reports as the model's
error, so `ignore_failure` can be tested against a model that really fails.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.model_server.models import EXTRACTIVE_MODEL, BadInput, LocalModels

LOG = logging.getLogger("local.model_server")
ROUTES = ("/embed", "/similarity", "/generate")
MAX_BODY = 32 * 1024 * 1024


def handle(models: LocalModels, target: str, body: Any) -> Any:
    """The JSON response to a POST to `target`; raises BadInput for a body this route cannot read."""
    url = urlsplit(target)
    path = url.path
    if path == "/embed":
        texts = [body] if isinstance(body, str) else body
        if not isinstance(texts, list):
            raise BadInput('/embed expects a JSON list of strings, e.g. ["hello world"]')
        dimensions = parse_qs(url.query).get("dimensions")
        return models.embed(texts, int(dimensions[0]) if dimensions else None)
    if path == "/similarity":
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if isinstance(inputs, list):
            return [_similarity(models, item) for item in inputs]
        return _similarity(models, inputs)
    if path == "/generate":
        prompt = body.get("prompt") if isinstance(body, dict) else None
        answer = models.answer(prompt)
        return {"response": answer.response, "model": EXTRACTIVE_MODEL, "passages": answer.passages}
    raise LookupError(path)


def _similarity(models: LocalModels, inputs: Any) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        raise BadInput('/similarity expects {"inputs": {"text": "...", "text_pair": "..."}}')
    return models.similarity(inputs.get("text"), inputs.get("text_pair"))


def make_handler(models: LocalModels) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: ML Commons pools its connections

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(HTTPStatus.OK, {"status": "ok", "models": [route[1:] for route in ROUTES]})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route GET {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY} bytes"})
                return
            raw = self.rfile.read(length)
            try:
                result = handle(models, self.path, json.loads(raw or b"null"))
            except LookupError:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route POST {self.path}; routes: {ROUTES}"})
            except (BadInput, ValueError) as error:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            else:
                self._reply(HTTPStatus.OK, result)

        def _reply(self, status: HTTPStatus, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            LOG.info("%s %s", self.address_string(), format % args)

    return Handler


def serve(host: str, port: int) -> None:
    from local.model.embedder import OnnxSentenceEmbedder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    models = LocalModels(OnnxSentenceEmbedder.default())
    server = ThreadingHTTPServer((host, port), make_handler(models))
    LOG.info("model server on http://%s:%d", host, port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
