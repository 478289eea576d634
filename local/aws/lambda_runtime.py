"""Run a Lambda function's real handler in this process, the way the Lambda Python runtime would.

moto can only run Lambda code in Docker. The local runtime has no Docker, so every invocation, whatever
its source, ends up here: the function's code zip comes from moto's backend, is extracted once per code
sha256, and its handler is imported and called with a Lambda-like context. Third-party dependencies come
from the host venv (on AWS they come from a Lambda layer).

Invocations are serialized by one lock, because a function's environment variables are applied to the
process-global `os.environ` for the duration of the call. The trade-off: a Distributed Map with
MaxConcurrency 8 runs its iterations one at a time here, and a handler that synchronously invokes another
function would wait on itself (`_LOCK_TIMEOUT_S` turns that into a clear error instead of a hang).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import logging
import os
import shutil
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.paths import state_dir

LOG = logging.getLogger(__name__)

# Lambda's own ceiling for one invocation; waiting longer for the lock means a nested synchronous Invoke.
_LOCK_TIMEOUT_S = 900.0
_INVOKE_LOCK = threading.Lock()
# top-level package or module name -> code sha it was imported from
_loaded_from: dict[str, str] = {}
_sha_by_moto_digest: dict[str, str] = {}
_extract_lock = threading.Lock()


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs to know about one function; built from moto's LambdaFunction."""

    name: str
    arn: str
    handler: str
    region: str
    code_zip: bytes
    code_digest: str  # moto's CodeSha256, used only as a cache key for the hex sha below
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_mb: int = 128
    timeout_s: int = 3
    runtime: str = "python3.11"


@dataclass(frozen=True)
class InvocationResult:
    payload: bytes
    function_error: str | None  # "Unhandled" when the handler raised, as Lambda reports it


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


class EmulatorSettings:
    """Where handler-side boto3 clients must point: this server. Set once by the server at startup."""

    endpoint_url = "http://127.0.0.1:4599"


def configure(endpoint_url: str) -> None:
    EmulatorSettings.endpoint_url = endpoint_url


def invoke(spec: FunctionSpec, event: Any) -> InvocationResult:
    """Run the handler for one event. Never raises for handler errors: they become an error payload."""
    if not _INVOKE_LOCK.acquire(timeout=_LOCK_TIMEOUT_S):
        return _error_result(
            "InvocationLockTimeout",
            f"{spec.name} waited {_LOCK_TIMEOUT_S:.0f}s for the emulator's invocation lock; "
            "a handler that synchronously invokes another function deadlocks in the local runtime",
            [],
        )
    try:
        code_dir = extract_code(spec)
        context = _context(spec)
        with _function_environment(spec, code_dir, context), _on_sys_path(code_dir):
            try:
                result = _load_handler(spec.handler, code_dir)(event, context)
            except HandlerLoadError as exc:
                return _error_result(exc.error_type, str(exc), [])
            except (Exception, SystemExit) as exc:  # reported the way Lambda reports it, by class name
                LOG.info("%s raised %s: %s", spec.name, type(exc).__name__, exc)
                name = "Runtime.ExitError" if isinstance(exc, SystemExit) else type(exc).__name__
                return _error_result(name, str(exc), traceback.format_tb(_user_frames(exc)))
        try:
            return InvocationResult(json.dumps(result).encode("utf-8"), None)
        except (TypeError, ValueError) as exc:
            return _error_result("Runtime.MarshalError", f"Unable to marshal response: {exc}", [])
    finally:
        _INVOKE_LOCK.release()


class HandlerLoadError(Exception):
    """The handler string does not lead to a function; `error_type` is the Python runtime's name for it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _user_frames(exc: BaseException) -> Any:
    # The first frame is invoke() itself; Lambda's stackTrace starts in the function's code.
    return exc.__traceback__.tb_next if exc.__traceback__ else None


def _error_result(error_type: str, message: str, stack: list[str]) -> InvocationResult:
    # The Python runtime's error shape; Step Functions matches Retry/Catch on `errorType`.
    # https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    payload = {"errorMessage": message, "errorType": error_type, "stackTrace": stack}
    return InvocationResult(json.dumps(payload).encode("utf-8"), "Unhandled")


def code_sha(spec: FunctionSpec) -> str:
    sha = _sha_by_moto_digest.get(spec.code_digest)
    if sha is None:
        sha = hashlib.sha256(spec.code_zip).hexdigest()
        _sha_by_moto_digest[spec.code_digest] = sha
    return sha


def extract_code(spec: FunctionSpec) -> Path:
    """Extract the code zip once per sha into state_dir()/lambda-code/<sha>; later calls reuse it."""
    sha = code_sha(spec)
    target = state_dir() / "lambda-code" / sha
    with _extract_lock:
        if not (target / ".complete").exists():
            partial = target.with_name(f"{sha}.partial-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            with zipfile.ZipFile(io.BytesIO(spec.code_zip)) as archive:
                archive.extractall(partial)
            (partial / ".complete").touch()
            if target.exists():  # a stale, incomplete extraction from a crashed run
                shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
    return target


def _load_handler(handler: str, code_dir: Path) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise HandlerLoadError(
            "Runtime.MalformedHandlerName", f"Bad handler '{handler}': not module.function"
        )
    sha = code_dir.name
    top = module_name.split(".", 1)[0]
    if _loaded_from.get(top) != sha:
        # New code for this package (or a copy imported from elsewhere, e.g. the repo's editable
        # install): drop every cached module of it so the import below reads the asset's files.
        _purge_package(top)
        importlib.invalidate_caches()
        _loaded_from[top] = sha
    try:
        module = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as exc:
        raise HandlerLoadError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise HandlerLoadError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return function


def _purge_package(top: str) -> None:
    for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
        del sys.modules[name]


def _context(spec: FunctionSpec) -> LambdaContext:
    now = time.gmtime()
    request_id = str(uuid.uuid4())
    return LambdaContext(
        function_name=spec.name,
        function_version="$LATEST",
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{spec.name}",
        log_stream_name=f"{time.strftime('%Y/%m/%d', now)}/[$LATEST]{request_id.replace('-', '')}",
        deadline_monotonic=time.monotonic() + spec.timeout_s,
    )


def runtime_environment(spec: FunctionSpec, code_dir: Path, context: LambdaContext) -> dict[str, str]:
    """The reserved variables the Lambda runtime sets, pointed at this emulator.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    """
    return {
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        # An unsampled trace header: the X-Ray SDK (Powertools Tracer) then records nothing, as on a
        # function without active tracing, instead of complaining that no segment exists.
        "_X_AMZN_TRACE_ID": _unsampled_trace_id(context.aws_request_id),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        # boto3 >= 1.28 reads AWS_ENDPOINT_URL, so clients the handler builds talk to this server.
        "AWS_ENDPOINT_URL": EmulatorSettings.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }


def _unsampled_trace_id(request_id: str) -> str:
    # https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
    hex_id = request_id.replace("-", "")
    return f"Root=1-{int(time.time()):08x}-{hex_id[:24]};Parent={hex_id[-16:]};Sampled=0"


@contextlib.contextmanager
def _function_environment(spec: FunctionSpec, code_dir: Path, context: LambdaContext) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(spec.environment)
    # Reserved variables win over the function's own, as on Lambda.
    os.environ.update(runtime_environment(spec, code_dir, context))
    os.environ.pop("AWS_PROFILE", None)  # a host profile would override the emulator's credentials
    try:
        yield
    finally:
        # Restore key by key: other server threads (moto reads MOTO_PORT per Step Functions task)
        # must never see an empty environment.
        for key in [k for k in os.environ if k not in saved]:
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def _on_sys_path(code_dir: Path) -> Iterator[None]:
    entry = str(code_dir)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
