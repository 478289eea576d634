"""Work that AWS does asynchronously (S3 -> Lambda, EventBridge -> Lambda, async Invoke) runs here.

Running it inline would make the caller's request (a PutObject, a PutEvents) wait for the handler, and a
handler that writes to the same bucket would wait on itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

LOG = logging.getLogger(__name__)

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="emulator-async")


def submit(work: Callable[[], Any], what: str) -> Future[Any]:
    future = _executor.submit(work)

    def report(done: Future[Any]) -> None:
        error = done.exception()
        if error is not None:
            LOG.error("%s failed: %s", what, error, exc_info=error)

    future.add_done_callback(report)
    return future
