"""One execution environment: a process with the function's environment, code and imported handler.

The pool starts it, sends it one invocation at a time and watches it meanwhile: past the function's
Timeout or past MemorySize of resident memory the process group is killed, as Lambda kills a sandbox, and
the invocation fails with Lambda's error. A crash fails only that invocation. A killed or crashed sandbox
is discarded; the next invocation starts a fresh one (a cold start).
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from local.aws.sandbox import bootstrap
from local.aws.sandbox.logs import LogStream
from local.aws.sandbox.spec import FunctionSpec, InvocationResult
from local.paths import state_dir

# Lambda gives init 10 s; a longer init is retried within the invocation's own timeout.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib
INIT_TIMEOUT_S = 10.0
# How often resident memory is sampled while the sandbox works: the watchdog's resolution.
_WATCH_INTERVAL_S = 0.02
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_extract_lock = threading.Lock()


class Sandbox:
    def __init__(self, spec: FunctionSpec, endpoint_url: str) -> None:
        self.spec = spec
        self.id = uuid.uuid4().hex
        now = time.gmtime()
        self.log = LogStream(spec, f"{time.strftime('%Y/%m/%d', now)}/[$LATEST]{self.id}")
        self.tmp = state_dir() / "lambda-tmp" / self.id  # this sandbox's /tmp
        self.tmp.mkdir(parents=True)
        code_dir = extract_code(spec)
        ours, theirs = socket.socketpair()
        self.channel = ours
        self.process = subprocess.Popen(
            [sys.executable, "-I", bootstrap.__file__, str(theirs.fileno()), str(code_dir)],
            env=self._environment(code_dir, endpoint_url),
            cwd=code_dir,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill also ends what the handler spawned
        )
        theirs.close()
        assert self.process.stdout is not None
        self._forwarder = threading.Thread(
            target=self.log.forward, args=(self.process.stdout,), name=f"logs-{spec.name}", daemon=True
        )
        self._forwarder.start()
        self.init_error: InvocationResult | None = None
        self.max_rss_mb = 0

    def _environment(self, code_dir: Path, endpoint_url: str) -> dict[str, str]:
        """The function's variables, then the reserved ones the Lambda runtime sets (they win, as on Lambda).

        https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
        Nothing of the emulator's own environment leaks in but PATH and LANG.
        """
        spec = self.spec
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            **spec.environment,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log.group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log.stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": spec.handler,
            "TZ": ":UTC",
            "HOME": str(self.tmp),
            "TMPDIR": str(self.tmp),
            "PYTHONUNBUFFERED": "1",  # log lines reach the log group as they are written
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            # boto3 >= 1.28 reads AWS_ENDPOINT_URL, so every client the handler builds talks to the emulator.
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self) -> None:
        """Wait for the init phase (the handler's import). Sets init_error if it failed or hung."""
        request_id = str(uuid.uuid4())
        outcome = self._await(time.monotonic() + INIT_TIMEOUT_S + self.spec.timeout_s, request_id)
        if isinstance(outcome, InvocationResult):
            self.init_error = outcome
        elif outcome is not None and "init_error" in outcome:
            self.init_error = InvocationResult.of(
                {"payload": outcome["init_error"], "function_error": "Unhandled"}
            )
            self.kill()

    def invoke(self, event: Any, request_id: str) -> InvocationResult:
        if self.init_error is not None:
            return self.init_error
        deadline = time.monotonic() + self.spec.timeout_s
        bootstrap.send_frame(
            self.channel,
            {
                "request_id": request_id,
                "event": event,
                "function_arn": self.spec.arn,
                "deadline_ms": int(time.time() * 1000) + self.spec.timeout_s * 1000,
                "trace_id": _unsampled_trace_id(request_id),
            },
        )
        outcome = self._await(deadline, request_id)
        if isinstance(outcome, InvocationResult):
            return outcome
        assert outcome is not None
        return InvocationResult.of(outcome)

    def _await(self, deadline: float, request_id: str) -> dict[str, Any] | InvocationResult | None:
        """The sandbox's next message, or the error that ended it: timeout, out of memory or exit."""
        while True:
            readable, _, _ = select.select([self.channel], [], [], _WATCH_INTERVAL_S)
            if readable:
                message = bootstrap.recv_frame(self.channel)
                if message is not None:
                    return message
                return self._exited(request_id)
            rss_mb = self._rss_mb()
            self.max_rss_mb = max(self.max_rss_mb, rss_mb)
            if rss_mb > self.spec.memory_mb:
                self.kill()
                self._report(
                    request_id, f"Runtime exited with error: signal: killed (Max Memory Used: {rss_mb} MB)"
                )
                return InvocationResult.error(
                    "Runtime.OutOfMemory",
                    f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
                )
            if time.monotonic() >= deadline:
                self.kill()
                timed_out = f"Task timed out after {self.spec.timeout_s:.2f} seconds"
                self._report(request_id, timed_out)
                return InvocationResult.error(
                    "Sandbox.Timedout", f"RequestId: {request_id} Error: {timed_out}"
                )

    def _exited(self, request_id: str) -> InvocationResult:
        code = self.process.wait()
        self._forwarder.join(timeout=5)
        how = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        self._report(request_id, f"Runtime exited with error: {how}")
        return InvocationResult.error(
            "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {how}"
        )

    def _report(self, request_id: str, message: str) -> None:
        self.log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {message}")

    def _rss_mb(self) -> int:
        try:
            resident_pages = int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):  # already gone: the channel reports it next
            return 0
        return resident_pages * _PAGE_SIZE // (1024 * 1024)

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._forwarder.join(timeout=5)
        self.channel.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _unsampled_trace_id(request_id: str) -> str:
    # With Sampled=0 the X-Ray SDK (Powertools Tracer) records nothing, as when no daemon is there to send to.
    # https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
    hex_id = request_id.replace("-", "")
    return f"Root=1-{int(time.time()):08x}-{hex_id[:24]};Parent={hex_id[-16:]};Sampled=0"


def extract_code(spec: FunctionSpec) -> Path:
    """Unpack the code zip once per sha into state_dir()/lambda-code/<sha>, shared by its sandboxes."""
    target = state_dir() / "lambda-code" / spec.code_sha
    with _extract_lock:
        if not (target / ".complete").exists():
            partial = target.with_name(f"{spec.code_sha}.partial-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            with zipfile.ZipFile(io.BytesIO(spec.code_zip)) as archive:
                archive.extractall(partial)
            (partial / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)  # a stale, incomplete extraction from a crashed run
            partial.rename(target)
    return target
