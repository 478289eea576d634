"""The five OpenAI calls the batch backend makes, over urllib3.

urllib3 rather than the `openai` SDK: it is already in the Lambda asset (botocore depends on it), while the
SDK would add httpx, anyio, jiter and distro to every function's layer for five REST calls. The tests
check that the local emulator also serves the official SDK unchanged, so the two cannot drift apart.

The API key is read from Secrets Manager at first use and held only in this object; it is sent in the
Authorization header and never logged or returned.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import urllib3

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

TIMEOUT = urllib3.Timeout(connect=10, read=120)


class OpenAIError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"OpenAI HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class OpenAIHttp:
    def __init__(
        self,
        api_base: str,
        secret_id: str,
        secrets: SecretsManagerClient,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self._base = api_base.rstrip("/")
        self._secret_id = secret_id
        self._secrets = secrets
        self._pool = pool or urllib3.PoolManager(retries=urllib3.Retry(total=3, backoff_factor=0.5))
        self._key: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._key is None:
            self._key = self._secrets.get_secret_value(SecretId=self._secret_id)["SecretString"]
        return {"Authorization": f"Bearer {self._key}"}

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._pool.request(
            method,
            f"{self._base}{path}",
            body=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            timeout=TIMEOUT,
        )
        return json.loads(_checked(response))

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """POST /files with purpose=batch (multipart), as the Batch API wants its input."""
        response = self._pool.request(
            "POST",
            f"{self._base}/files",
            fields={"purpose": "batch", "file": (name, data, "application/jsonl")},
            headers=self._headers(),
            timeout=TIMEOUT,
        )
        result: dict[str, Any] = json.loads(_checked(response))
        return result

    def content(self, file_id: str) -> bytes:
        response = self._pool.request(
            "GET", f"{self._base}/files/{file_id}/content", headers=self._headers(), timeout=TIMEOUT
        )
        return _checked(response)


def _checked(response: urllib3.BaseHTTPResponse) -> bytes:
    data = bytes(response.data)
    if response.status < 400:
        return data
    try:
        error = json.loads(data).get("error") or {}
    except ValueError:
        error = {}
    code = str(error.get("code") or error.get("type") or "")
    raise OpenAIError(response.status, code, str(error.get("message") or data[:200].decode(errors="replace")))
