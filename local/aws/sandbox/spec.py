"""What a sandbox needs to know about one function, and what an invocation returns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# AWS's default account quota for concurrent executions; reserved concurrency caps one function below it.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
ACCOUNT_CONCURRENCY = 1000


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    account_id: str
    region: str
    handler: str
    runtime: str
    code_zip: bytes = field(repr=False)
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_mb: int = 128
    timeout_s: int = 3
    reserved_concurrency: int | None = None
    log_group: str = ""

    @cached_property
    def code_sha(self) -> str:
        return hashlib.sha256(self.code_zip).hexdigest()

    @cached_property
    def revision(self) -> str:
        """Changes whenever a sandbox started for this spec would no longer match the function."""
        settings = [self.handler, self.runtime, dict(self.environment), self.memory_mb, self.timeout_s]
        return hashlib.sha256(f"{self.code_sha}{json.dumps(settings, sort_keys=True)}".encode()).hexdigest()


@dataclass(frozen=True)
class InvocationResult:
    payload: bytes
    function_error: str | None  # "Unhandled" when the invocation failed, as Lambda reports it

    @classmethod
    def of(cls, response: Mapping[str, Any]) -> InvocationResult:
        return cls(json.dumps(response["payload"]).encode("utf-8"), response.get("function_error"))

    @classmethod
    def error(cls, error_type: str, message: str) -> InvocationResult:
        # https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
        body = {"errorMessage": message, "errorType": error_type}
        return cls(json.dumps(body).encode("utf-8"), "Unhandled")


class Throttled(Exception):
    """No sandbox may start: the function's reserved concurrency (or the account's) is in use.

    Lambda answers such an Invoke with 429 TooManyRequestsException.
    """

    def __init__(self, reason: str, function_name: str) -> None:
        super().__init__(f"Rate Exceeded. ({reason}: {function_name})")
        self.reason = reason
