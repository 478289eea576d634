"""Bedrock's real-time InvokeModel for the embedding models, on the local model, in the AWS emulator.

moto 5.2.5 has no bedrock-runtime. InvokeModel is `POST /model/{modelId}/invoke` with the model's own
request as the body, answered with the model's own response body (API reference "InvokeModel",
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html). The bodies are those
a batch job's `modelInput` and `modelOutput` hold (bedrock_batch.py), so both paths share one
implementation: Titan Text Embeddings V2's `{"inputText", "dimensions", "normalize"}` -> `{"embedding",
"embeddingsByType", "inputTextTokenCount"}` in the requested size, 1024 by default, or 512 or 256 ("Amazon
Titan Text Embeddings models", https://docs.aws.amazon.com/bedrock/latest/userguide/titan-embedding-models.html;
the bodies: "Amazon Titan Embeddings G1 - Text", .../userguide/model-parameters-titan-embed-text.html),
and Cohere Embed's `{"texts", "input_type"}` -> `{"embeddings", ...}`. osbatch calls it to embed a knn
query with the pipeline's model (osbatch/backends/query_vectors.py). A body the model does not take, or a
model the emulator has no local stand-in for, is the API's ValidationException (HTTP 400), and so is a
Titan text over the model's length limits (local/emulators/input_limits.py).

This WSGI wrapper answers those requests before moto's dispatcher sees them; bedrock-runtime signs as
service `bedrock`, and moto's Bedrock backend has no such path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from local.emulators.bedrock_batch import (
    CLAUDE,
    RecordError,
    embedding_output,
    input_refusal,
    model_family,
    texts_of,
)
from local.model import Embedder

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
INVOKE_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")


class InvokeError(Exception):
    def __init__(self, error_type: str, message: str, status: str = "400 Bad Request") -> None:
        super().__init__(message)
        self.error_type, self.status = error_type, status


def invoke_model(model_id: str, body: Any, embedder: Callable[[], Embedder]) -> dict[str, Any]:
    """The model's response body to one InvokeModel request body."""
    family = model_family(model_id)
    if family is None or family == CLAUDE:
        raise InvokeError(
            "ValidationException",
            f"The provided model identifier is invalid: the local emulator serves InvokeModel for Titan "
            f"Text Embeddings V2 and Cohere Embed only, not {model_id}",
        )
    try:
        texts = texts_of(family, body)
    except RecordError as error:
        raise InvokeError("ValidationException", f"Malformed input request: {error}") from None
    refusal = input_refusal(family, texts)
    if refusal is not None:  # Titan's length limits (local/emulators/input_limits.py)
        raise InvokeError("ValidationException", refusal)
    return embedding_output(family, body, texts, embedder().embed(texts))


def with_bedrock_runtime(app: WsgiApp, embedder: Callable[[], Embedder]) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = INVOKE_PATH.match(str(environ.get("PATH_INFO", "")))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                raise InvokeError("ValidationException", "Malformed input request: not JSON") from None
            answer = json.dumps(invoke_model(unquote(match.group("model")), body, embedder)).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
            )
        except InvokeError as error:
            answer = json.dumps({"message": str(error)}).encode()
            headers = [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", error.error_type),
                ("Content-Length", str(len(answer))),
            ]
            start_response(error.status, headers)
        return [answer]

    return wrapped
