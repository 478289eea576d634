"""Bulk indexing with bounded retries, where every document ends up indexed or a Failure with a reason.

Actions are `index` with the document id, so a retried request, chunk or job overwrites what it wrote before.
Retries: the whole request on 429, 5xx and connection errors; only the rejected items on item-level 429/503
(the rest of the request already succeeded). Backoff is exponential with full jitter, so chunks running in
parallel against one cluster spread their retries out instead of returning together.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from osbatch import jsonlines
from osbatch.ingest.models import Failure, MappedDoc, RecordRef

logger = logging.getLogger(__name__)

RETRYABLE_ITEM_STATUSES = frozenset({429, 503})
# Wrong credentials or permissions fail every document the same way. Dead-lettering the whole job for them
# would copy the data set into the dead-letter bucket; failing the chunk lets it be re-run once fixed.
FATAL_REQUEST_STATUSES = frozenset({401, 403})
MAX_REASON_CHARS = 2000


class BulkClient(Protocol):
    def bulk(self, *, body: Any, index: Any = None) -> Any: ...


class OpenSearchAccessError(RuntimeError):
    """OpenSearch refused the credentials; nothing in this chunk can be indexed until that is fixed."""


@dataclass(frozen=True, slots=True)
class _Pending:
    ref: RecordRef
    payload: bytes  # the action line and the source line, newline-terminated


def _item_reason(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)[:MAX_REASON_CHARS]
    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        # The cause carries the useful part, e.g. "Vector dimension mismatch. Expected: 384, Actual: 3".
        reason += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
    return reason[:MAX_REASON_CHARS]


def _request_reason(error: TransportError) -> str:
    if isinstance(error, OpenSearchConnectionError):
        return f"{type(error).__name__}: {error.error}"[:MAX_REASON_CHARS]
    info = error.info.get("error") if isinstance(error.info, dict) else None
    detail = _item_reason(info) if isinstance(info, dict) else str(error.error)
    return f"HTTP {error.status_code} {detail}"[:MAX_REASON_CHARS]


def _retryable(error: TransportError) -> bool:
    status = error.status_code
    return (
        isinstance(error, OpenSearchConnectionError)
        or status == 429
        or (isinstance(status, int) and status >= 500)
    )


class BulkWriter:
    def __init__(
        self,
        client: BulkClient,
        index: str,
        *,
        max_bytes: int,
        max_retries: int,
        initial_backoff: float,
        max_backoff: float,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._index = index
        self._max_bytes = max_bytes
        self._max_retries = max_retries
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._rng = rng
        self._buffer: list[_Pending] = []
        self._buffered_bytes = 0
        self._failures: list[Failure] = []
        self.indexed = 0
        self.requests = 0

    def add(self, doc: MappedDoc, ref: RecordRef) -> None:
        action = {"index": {"_id": doc.doc_id}} if doc.doc_id is not None else {"index": {}}
        payload = jsonlines.dump_line(action) + jsonlines.dump_line(doc.body)
        # A document bigger than max_bytes still goes, alone: OpenSearch's own limit decides its fate.
        if self._buffer and self._buffered_bytes + len(payload) > self._max_bytes:
            self.flush()
        self._buffer.append(_Pending(ref, payload))
        self._buffered_bytes += len(payload)

    def flush(self) -> None:
        batch, self._buffer, self._buffered_bytes = self._buffer, [], 0
        if batch:
            self._send(batch)

    def close(self) -> list[Failure]:
        """Send what is buffered; the failures of every request so far."""
        self.flush()
        return list(self._failures)

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (0-based): full jitter over a capped exponential."""
        return self._rng() * min(self._max_backoff, self._initial_backoff * 2**retry)

    def _send(self, batch: list[_Pending]) -> None:
        pending = batch
        last_error = ""
        for attempt in range(self._max_retries + 1):
            if attempt:
                self._sleep(self.backoff(attempt - 1))
            try:
                self.requests += 1
                response = self._client.bulk(
                    body=b"".join(item.payload for item in pending), index=self._index
                )
            except TransportError as error:
                if error.status_code in FATAL_REQUEST_STATUSES:
                    raise OpenSearchAccessError(_request_reason(error)) from error
                last_error = _request_reason(error)
                if not _retryable(error):
                    self._fail(pending, last_error)
                    return
                # Status and type only: reasons can quote field values, and logs must not hold documents.
                logger.warning(
                    "bulk request failed",
                    extra={"status": error.status_code, "attempt": attempt, "docs": len(pending)},
                )
                continue
            pending, item_error = self._settle(pending, response)
            last_error = item_error or last_error
            if not pending:
                return
            logger.warning("bulk items rejected", extra={"attempt": attempt, "docs": len(pending)})
        self._fail(pending, f"{last_error} (gave up after {self._max_retries} retries)")

    def _settle(self, pending: list[_Pending], response: Any) -> tuple[list[_Pending], str]:
        """Count successes, record final failures; the items worth retrying and the last retryable reason."""
        items = response.get("items", []) if isinstance(response, dict) else []
        if len(items) != len(pending):
            self._fail(pending, f"bulk response has {len(items)} items for {len(pending)} documents")
            return [], ""
        if isinstance(response, dict) and response.get("errors") is False:
            self.indexed += len(pending)
            return [], ""
        retry: list[_Pending] = []
        retry_reason = ""
        for doc, item in zip(pending, items, strict=True):
            result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            status = result.get("status", 0)
            if 200 <= status < 300:
                self.indexed += 1
            elif status in RETRYABLE_ITEM_STATUSES:
                retry.append(doc)
                retry_reason = _item_reason(result.get("error"))
            else:
                self._failures.append(Failure(doc.ref, _item_reason(result.get("error", f"status {status}"))))
        return retry, retry_reason

    def _fail(self, pending: list[_Pending], reason: str) -> None:
        self._failures.extend(Failure(item.ref, reason) for item in pending)
