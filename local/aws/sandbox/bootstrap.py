"""The process inside one sandbox: what Lambda's Python runtime interface client does, on the stdlib only.

    python -I bootstrap.py <channel fd> <code dir>

It runs with the function's environment (set by the pool when it starts the process), puts the code
directory first on sys.path, imports the handler once (the init phase), reports `ready`, and then serves
one invocation at a time over the channel: {"request_id", "event", "deadline_ms"} in,
{"payload", "function_error"} out. Handler output and the START/END/REPORT lines go to stdout, which the
pool forwards to the function's log group. The pool, not this process, enforces timeout and memory.

Never imports from `local`: it must see only the function's code and the host venv's packages, as a
function sees only its code and layers.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

_HEADER = struct.Struct(">I")


def send_frame(channel: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    channel.sendall(_HEADER.pack(len(data)) + data)


def recv_frame(channel: socket.socket) -> dict[str, Any] | None:
    """The next message, or None when the other end has gone."""
    header = _read_exactly(channel, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(channel, _HEADER.unpack(header)[0])
    return None if body is None else dict(json.loads(body))


def _read_exactly(channel: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = channel.recv(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def error_payload(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    # The Python runtime's error shape; Step Functions matches Retry/Catch on `errorType`.
    # https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}


@dataclass
class LambdaContext:
    """The context attributes handlers and Powertools read.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


class InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not module.function")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as exc:
        raise InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return function


def invoke(function: Any, request: dict[str, Any]) -> dict[str, Any]:
    request_id = str(request["request_id"])
    os.environ["_X_AMZN_TRACE_ID"] = str(request["trace_id"])
    context = LambdaContext(
        function_name=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        function_version=os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        invoked_function_arn=str(request["function_arn"]),
        memory_limit_in_mb=int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        aws_request_id=request_id,
        log_group_name=os.environ["AWS_LAMBDA_LOG_GROUP_NAME"],
        log_stream_name=os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        deadline_ms=int(request["deadline_ms"]),
    )
    try:
        result = function(request["event"], context)
    except Exception as exc:  # reported the way Lambda reports it, by class name
        stack = traceback.format_tb(exc.__traceback__.tb_next if exc.__traceback__ else None)
        return {"payload": error_payload(type(exc).__name__, str(exc), stack), "function_error": "Unhandled"}
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        message = f"Unable to marshal response: {exc}"
        return {"payload": error_payload("Runtime.MarshalError", message), "function_error": "Unhandled"}
    return {"payload": result, "function_error": None}


def peak_memory_mb() -> int:
    """This process's own peak resident memory, the figure Lambda's REPORT line calls Max Memory Used.

    Not ru_maxrss: a child starts with its parent's resident size in it (fork copies the address space, and
    vfork shares it), and "resource usage metrics are preserved across an execve" (getrusage(2)), so a
    sandbox the emulator started would report the emulator's size. VmHWM (proc(5), /proc/pid/status) is the
    peak of this process's own address space, which execve made new.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024  # in kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # no procfs: the best there is


def serve(channel: socket.socket, function: Any) -> None:
    while (request := recv_frame(channel)) is not None:
        request_id = request["request_id"]
        print(
            f"START RequestId: {request_id} Version: {os.environ['AWS_LAMBDA_FUNCTION_VERSION']}", flush=True
        )
        started = time.monotonic()
        response = invoke(function, request)
        duration_ms = (time.monotonic() - started) * 1000
        max_used_mb = peak_memory_mb()
        memory = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        print(f"END RequestId: {request_id}", flush=True)
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {memory} MB\tMax Memory Used: {max_used_mb} MB",
            flush=True,
        )
        sys.stderr.flush()
        send_frame(channel, response)


def main() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    code_dir = sys.argv[2]
    sys.path.insert(0, code_dir)
    os.chdir(code_dir)
    try:
        function = load_handler(os.environ["_HANDLER"])
    except InitError as error:
        print(f"INIT_REPORT Init Failed: {error.error_type}: {error}", flush=True)
        send_frame(channel, {"init_error": error_payload(error.error_type, str(error))})
        return
    send_frame(channel, {"ready": True})
    serve(channel, function)


if __name__ == "__main__":
    main()
