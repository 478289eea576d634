"""Every Lambda invocation in moto runs in a sandbox process of its function (local.aws.sandbox).

The choke point is `LambdaFunction.invoke`: the Invoke API, EventBridge and S3 notifications, SNS and
Step Functions Task states (which call Invoke over HTTP) all end there. moto's own `_invoke_lambda`
would start a Docker container; we never call it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping, MutableMapping
from concurrent.futures import Future
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.s3 import notifications as s3_notifications

from local.aws import background, metrics
from local.aws.sandbox import FunctionSpec, InvocationResult, SandboxPools, Throttled

LOG = logging.getLogger(__name__)
ASYNC_RETRY_S = 6 * 3600
ASYNC_FIRST_DELAY_S = 1.0
ASYNC_MAX_DELAY_S = 60.0


class TooManyRequestsException(LambdaClientError):
    """Invoke's throttling error. https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors"""

    code = 429

    def __init__(self, throttled: Throttled) -> None:
        super().__init__("TooManyRequestsException", str(throttled))


class Sandboxes:
    pools: SandboxPools | None = None


def spec_for(function: LambdaFunction) -> FunctionSpec:
    code_zip = getattr(function, "code_bytes", b"")
    if not code_zip:
        raise ValueError(f"{function.function_name}: only zip-packaged functions can run locally")
    logging_config = getattr(function, "logging_config", None) or {}
    reserved = function.reserved_concurrency
    return FunctionSpec(
        name=function.function_name,
        arn=function.function_arn,
        account_id=function.account_id,
        region=function.region,
        handler=str(function.handler),
        runtime=str(function.run_time or "python3.12"),
        code_zip=code_zip,
        environment={k: str(v) for k, v in (function.environment_vars or {}).items()},
        memory_mb=int(function.memory_size or 128),
        timeout_s=int(function.timeout or 3),
        reserved_concurrency=None if reserved is None else int(reserved),
        log_group=str(logging_config.get("LogGroup") or f"/aws/lambda/{function.function_name}"),
    )


def run(function: LambdaFunction, event: Any) -> InvocationResult:
    """One invocation; raises Throttled when the function's or the account's concurrency is used up."""
    assert Sandboxes.pools is not None, "install() first"
    spec = spec_for(function)
    started = time.monotonic()
    try:
        result = Sandboxes.pools.invoke(spec, event)
    except Throttled:
        metrics.lambda_throttled(spec.name, spec.account_id, spec.region)
        raise
    duration_ms = (time.monotonic() - started) * 1000
    metrics.lambda_invocation(
        spec.name, spec.account_id, spec.region, duration_ms=duration_ms, error=bool(result.function_error)
    )
    return result


def invoke_async(function: LambdaFunction, event: Any, what: str) -> Future[None]:
    """An asynchronous invocation (Invoke with `Event`, EventBridge): Lambda keeps a throttled event and
    retries it for up to six hours ("Asynchronous invocation", "Error handling and automatic retries",
    docs.aws.amazon.com/lambda/latest/dg/invocation-async.html). Here too, backing off at real speed (what
    it waits for, sandboxes coming free, runs at real speed), on a timer rather than a held worker thread."""
    return _attempt_async(function, event, what, time.monotonic(), ASYNC_FIRST_DELAY_S)


def _attempt_async(
    function: LambdaFunction, event: Any, what: str, since: float, delay: float
) -> Future[None]:
    """The first attempt's future (a test waits on it); retries run on timers of their own."""

    def attempt() -> None:
        try:
            run(function, event)
        except Throttled as throttled:
            if time.monotonic() - since > ASYNC_RETRY_S:
                LOG.error("asynchronous invocation of %s dropped: %s", function.function_name, throttled)
                return
            backoff = min(delay * 2, ASYNC_MAX_DELAY_S)
            timer = threading.Timer(
                delay * random.uniform(0.5, 1.0),  # jittered, so the throttled events spread out
                lambda: _attempt_async(function, event, what, since, backoff),
            )
            timer.daemon = True
            timer.start()

    return background.submit(attempt, what)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    # werkzeug's request headers are case-insensitive; moto's internal callers pass plain dicts.
    return headers.get(name) or headers.get(name.lower()) or headers.get(name.title())


def _invoke(
    self: LambdaFunction, body: Any, request_headers: Any, response_headers: MutableMapping[str, str]
) -> bytes:
    event = json.loads(body) if body else {}
    invocation_type = _header(request_headers, "X-Amz-Invocation-Type") or "RequestResponse"
    response_headers["x-amz-executed-version"] = str(self.version)
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html (throttles retried; function
        # errors are not: nothing here relies on Lambda's two retries of a failed asynchronous event)
        invoke_async(self, event, f"async invoke of {self.function_name}")
        return b""
    try:
        result = run(self, event)
    except Throttled as throttled:
        raise TooManyRequestsException(throttled) from None
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    return result.payload


def _invoke_from_s3(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    # S3 invokes Lambda asynchronously: PutObject must not wait for (or deadlock on) the handler.
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html
    background.submit(
        lambda: _original_s3_invoke(account_id, event_body, fn_arn, region_name),
        f"S3 notification to {fn_arn}",
    )


def _send_sns_message_async(self: LambdaBackend, *args: Any, **kwargs: Any) -> None:
    # SNS also invokes subscribed functions asynchronously.
    background.submit(lambda: _original_send_sns(self, *args, **kwargs), "SNS delivery to Lambda")


_original_s3_invoke = s3_notifications._invoke_awslambda
_original_send_sns = LambdaBackend.send_sns_message


def install(endpoint_url: str) -> SandboxPools:
    Sandboxes.pools = SandboxPools(endpoint_url)
    LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
    s3_notifications._invoke_awslambda = _invoke_from_s3
    LambdaBackend.send_sns_message = _send_sns_message_async  # type: ignore[method-assign]
    return Sandboxes.pools
