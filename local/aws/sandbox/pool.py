"""Warm sandboxes per function, as Lambda keeps execution environments.

An invocation takes an idle sandbox of its function (warm start) or starts a new one (cold start), so
concurrency grows with the callers: a Distributed Map's MaxConcurrency, the SQS poller's batches. A
function's ReservedConcurrentExecutions caps its sandboxes busy at once, the account quota caps them all,
and an invocation past either cap is throttled. When a function's code or configuration changes, its
sandboxes are retired, as Lambda retires environments of the previous version.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from local.aws.sandbox.sandbox import Sandbox
from local.aws.sandbox.spec import ACCOUNT_CONCURRENCY, FunctionSpec, InvocationResult, Throttled

LOG = logging.getLogger(__name__)


class FunctionPool:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.idle: list[Sandbox] = []
        self.busy = 0
        self.retired = False


class SandboxPools:
    def __init__(self, endpoint_url: str, account_concurrency: int = ACCOUNT_CONCURRENCY) -> None:
        self.endpoint_url = endpoint_url
        self.account_concurrency = account_concurrency
        self._pools: dict[str, FunctionPool] = {}  # function ARN -> pool of its current revision
        self._lock = threading.Lock()

    def invoke(self, spec: FunctionSpec, event: Any) -> InvocationResult:
        """Run one invocation in a sandbox of `spec`. Raises Throttled; every other failure is a result."""
        pool, sandbox = self._acquire(spec)
        healthy = False
        try:
            if sandbox is None:
                sandbox = Sandbox(spec, self.endpoint_url)
                sandbox.start()
            result = sandbox.invoke(event, str(uuid.uuid4()))
            healthy = sandbox.alive and sandbox.init_error is None
            return result
        finally:
            self._release(pool, sandbox, healthy)

    def _acquire(self, spec: FunctionSpec) -> tuple[FunctionPool, Sandbox | None]:
        with self._lock:
            pool = self._pools.get(spec.arn)
            if pool is None or pool.spec.revision != spec.revision:
                if pool is not None:
                    self._retire(pool)
                pool = self._pools[spec.arn] = FunctionPool(spec)
            reserved = spec.reserved_concurrency
            if reserved is not None and pool.busy >= reserved:
                raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded", spec.name)
            if sum(p.busy for p in self._pools.values()) >= self.account_concurrency:
                raise Throttled("ConcurrentInvocationLimitExceeded", spec.name)
            pool.busy += 1
            return pool, self._live_idle(pool)

    @staticmethod
    def _live_idle(pool: FunctionPool) -> Sandbox | None:
        """An idle sandbox whose process still runs. One that died while idle (killed from outside: the
        reliability scenarios' SIGKILL) would take the invocation into a closed channel; Lambda never
        hands an invocation to a dead environment, so it is dropped and the next one tried."""
        while pool.idle:
            sandbox = pool.idle.pop()
            if sandbox.alive:
                return sandbox
            sandbox.kill()  # reaps the process and removes its /tmp; nothing here blocks
        return None

    def _release(self, pool: FunctionPool, sandbox: Sandbox | None, healthy: bool) -> None:
        with self._lock:
            pool.busy -= 1
            keep = sandbox is not None and healthy and not pool.retired
            if keep:
                assert sandbox is not None
                pool.idle.append(sandbox)
        if sandbox is not None and not keep:
            sandbox.kill()

    def _retire(self, pool: FunctionPool) -> None:
        pool.retired = True
        for sandbox in pool.idle:
            sandbox.kill()
        pool.idle.clear()

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                self._retire(pool)
            self._pools.clear()
