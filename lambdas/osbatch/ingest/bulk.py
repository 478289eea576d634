"""Bulk indexing with bounded retries, where every document ends up indexed or a Failure with a reason.

Actions are `index` with the document id, so a retried request, chunk or job overwrites what it wrote before.
Requests are cut by bytes (the uncompressed body, which is what a domain's request cap measures; the client
gzips it on the wire) and up to `concurrency` of them are in flight at once. Retries: the whole request on
429, 5xx, timeouts and connection errors; only the rejected items on item-level 429/503 (the rest of the
request already succeeded). Backoff is exponential with full jitter, so writers running in parallel against
one cluster spread their retries out instead of returning together.

Later lines win, whatever order requests land in: a document with a version (its job's version base plus
its input line) goes with `version_type: external_gte`, so an earlier line's write that arrives after a
later one's is refused with 409 and counted as superseded, not failed; a retry of the same write succeeds.

A record may be several documents (a chunked record in the passage layout: add_record). They go in one
request, and the record counts once: indexed when all its documents are, else one failure (the first reason).

A request whose outcome is unknown (a timeout, a reset or cut response, a 5xx) may have been applied by the
node. If its retries run out, the writer first asks the index (`_mget`, OpenSearch "Multi-get documents":
docs.opensearch.org/latest/api-reference/document-apis/multi-get/) which of its versioned documents are
there at their version or a later one: those are indexed, and only the rest are failures. Without that, a
record the index holds would also be dead-lettered (bench/load.py met it at 1,000,000 records).

Writers of one domain share a limit (dal/domain_writers.py) through a WriteGate: every attempt of a request
first waits for the writer's turn, and every 429 is reported, so the domain's limit halves the moment the
cluster pushes back, in every chunk writing to it, not only in the one that was refused.

Requests settle in the order they were cut (the oldest in flight is awaited first), so `on_settled` sees a
growing prefix of the input: everything before its offset is indexed or a failure. Checkpoints build on that.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from osbatch import jsonlines
from osbatch.ingest.node_gone import NOT_RETRIED, NodeGone
from osbatch.ingest.wire_limit import WireLimit
from osbatch.models.ingest import Failure, MappedDoc, RecordRef
from osbatch.retry import Backoff, Hooks, TryAgain, after_attempts, retrying

if TYPE_CHECKING:
    from osbatch.config import BulkConfig

logger = logging.getLogger(__name__)

RETRYABLE_ITEM_STATUSES = frozenset({429, 503})
VERSION_CONFLICT = "version_conflict_engine_exception"
# Several files of a join update one document at once (parallel chunks): OpenSearch re-applies an update
# that lost a race this many times itself; past that the item is resent like a 429, never counted as done.
UPSERT_CONFLICT_RETRIES = 5
# Wrong credentials or permissions fail every document the same way. Dead-lettering the whole job for them
# would copy the data set into the dead-letter bucket; failing the chunk lets it be re-run once fixed.
FATAL_REQUEST_STATUSES = frozenset({401, 403})
MAX_REASON_CHARS = 2000


class BulkClient(Protocol):
    def bulk(self, *, body: Any, index: Any = None) -> Any: ...


@runtime_checkable
class DocumentLookup(Protocol):
    """A client that can also read documents back (opensearch-py's can): the writer then settles a request
    whose outcome was unknown by what the index holds. Without it, such a request's documents fail."""

    def mget(self, *, index: Any, body: Any, params: Any = None) -> Any: ...


class WriteGate(Protocol):
    """The domain's say in when this writer's requests go out (dal/domain_writers.py WriterTurns)."""

    def wait_turn(self) -> float:
        """Return when a request may go on the wire, with the turn's time; raises when it did not come in
        time."""

    def throttled(self, turn: float) -> None:
        """The cluster answered 429 to the request sent on `turn`."""

    def succeeded(self, turn: float) -> None:
        """The cluster took the request sent on `turn` without a 429."""


class OpenSearchAccessError(RuntimeError):
    """OpenSearch refused the credentials; nothing in this chunk can be indexed until that is fixed."""


@dataclass(frozen=True, slots=True)
class _Pending:
    ref: RecordRef
    payload: bytes  # the action line and the source line, newline-terminated
    versioned: tuple[str, int] | None = None  # (id, external version) of a versioned index write


@dataclass(slots=True)
class Settled:
    """What one request (with its retries) came to. `end` is the input offset just past its last record."""

    end: int
    indexed: int = 0
    requests: int = 0
    throttled: int = 0  # attempts answered with 429, whole or per item: what a concurrency limiter reacts to
    superseded: int = 0  # of `indexed`: writes a later line of the same id had already overwritten
    failures: list[Failure] = field(default_factory=list)


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
        isinstance(error, OpenSearchConnectionError)  # ConnectionTimeout is one
        or status == 429
        or (isinstance(status, int) and status >= 500)
    )


class BulkWriter:
    @classmethod
    def configured(cls, client: BulkClient, index: str, bulk: BulkConfig, **options: Any) -> BulkWriter:
        """A writer with a pipeline's `sink.bulk` settings; options (upsert, sleep, ...) as for __init__."""
        return cls(
            client,
            index,
            max_bytes=bulk.max_bytes,
            max_request_bytes=bulk.max_request_bytes,
            concurrency=bulk.concurrency,
            max_retries=bulk.max_retries,
            initial_backoff=bulk.initial_backoff_seconds,
            max_backoff=bulk.max_backoff_seconds,
            **options,
        )

    def __init__(
        self,
        client: BulkClient,
        index: str,
        *,
        max_bytes: int,
        max_retries: int,
        initial_backoff: float,
        max_backoff: float,
        max_request_bytes: int | None = None,
        concurrency: int = 1,
        upsert: bool = False,
        partial: bool = False,
        on_settled: Callable[[Settled], None] | None = None,
        gate: WriteGate | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._client = client
        self._index = index
        self._max_bytes = max_bytes if max_request_bytes is None else min(max_bytes, max_request_bytes)
        self._max_request_bytes = max_request_bytes
        self._max_retries = max_retries
        self._backoff = Backoff(initial=initial_backoff, cap=max_backoff)
        self._on_settled = on_settled
        self._gate = gate
        self._upsert = upsert
        self._partial = partial
        self._sleep = sleep
        self._rng = rng
        self._buffer: list[_Pending] = []
        self._buffered_bytes = 0
        self._buffer_end = 0
        self._failures: list[Failure] = []
        self._concurrency = concurrency
        # One thread per request in flight; with concurrency 1 requests run inline, in the caller's thread.
        self._pool = ThreadPoolExecutor(concurrency) if concurrency > 1 else None
        # Of those, the ones on the wire: fewer once the cluster answered 429 (ingest/wire_limit.py).
        self._wire = WireLimit(concurrency)
        # After a request the node answered none of, one attempt per request (ingest/node_gone.py).
        self._node = NodeGone()
        self._in_flight: deque[Future[Settled]] = deque()
        self.indexed = 0
        self.requests = 0
        self.throttled = 0
        self.superseded = 0
        self.requests_cut = 0  # each is settled once, in this order (on_settled)

    def add(self, doc: MappedDoc, ref: RecordRef, end: int | None = None, version: int | None = None) -> None:
        """end: the input offset just past this record (default: its start), reported back by on_settled.
        version: orders writes of one id (later wins); only for documents with an id."""
        self.add_record([doc], ref, end, version)

    def add_record(
        self, docs: list[MappedDoc], ref: RecordRef, end: int | None = None, version: int | None = None
    ) -> None:
        """The documents of one record, sent in one request and counted as one record (see add)."""
        payloads = [self._payload(doc, version) for doc in docs]
        versioned = [
            (doc.doc_id, version)
            if version is not None and doc.doc_id is not None and self._versioned(doc, version)
            else None
            for doc in docs
        ]
        size = sum(map(len, payloads))
        end = ref.offset if end is None else end
        if self._max_request_bytes is not None and size > self._max_request_bytes:
            # The domain would answer 413 for the whole request; refuse this one record instead.
            cap = self._max_request_bytes
            what = "document is" if len(docs) == 1 else f"record's {len(docs)} documents are"
            reason = f"the {what} {size} bytes, over the {cap}-byte request cap"
            self.flush()
            self._settle_in_order(Settled(end, failures=[Failure(ref, reason)]))
            return
        # Under the cap, a record bigger than max_bytes still goes, alone: OpenSearch decides its fate.
        if self._buffer and self._buffered_bytes + size > self._max_bytes:
            self.flush()
        self._buffer.extend(
            _Pending(ref, payload, key) for payload, key in zip(payloads, versioned, strict=True)
        )
        self._buffered_bytes += size
        self._buffer_end = end

    def _payload(self, doc: MappedDoc, version: int | None) -> bytes:
        meta: dict[str, Any] = {}
        if doc.doc_id is not None:
            meta["_id"] = doc.doc_id
        if self._upsert:
            # Each file of a join writes its own fields into the shared document, in any order.
            meta["retry_on_conflict"] = UPSERT_CONFLICT_RETRIES
            action: dict[str, Any] = {"update": meta}
            source: Any = {"doc": doc.body, "doc_as_upsert": True}
        elif self._partial:
            # Some fields of a document that exists (osbatch.incremental): one that is gone fails, never
            # comes back without its vectors.
            action, source = {"update": meta}, {"doc": doc.body}
        else:
            if self._versioned(doc, version):
                meta.update(version=version, version_type="external_gte")
            action, source = {"index": meta}, doc.body
        return jsonlines.dump_line(action) + jsonlines.dump_line(source)

    def _versioned(self, doc: MappedDoc, version: int | None) -> bool:
        return version is not None and doc.doc_id is not None and not self._upsert and not self._partial

    def flush(self) -> None:
        """Send what is buffered; waits only while the requests in flight are at the concurrency limit."""
        batch, self._buffer, self._buffered_bytes = self._buffer, [], 0
        if not batch:
            return
        self.requests_cut += 1
        if self._pool is None:
            self._record(self._send(batch, self._buffer_end))
            return
        while len(self._in_flight) >= self._concurrency:
            self._record(self._in_flight.popleft().result())
        self._in_flight.append(self._pool.submit(self._send, batch, self._buffer_end))

    def close(self) -> list[Failure]:
        """Send what is buffered and wait for every request; the failures of every request so far (with
        on_settled: none, that callback had them)."""
        try:
            self.flush()
            while self._in_flight:
                self._record(self._in_flight.popleft().result())
        finally:
            if self._pool is not None:
                # An error (OpenSearchAccessError) leaves requests behind: cancel what has not started.
                self._pool.shutdown(wait=True, cancel_futures=True)
        return list(self._failures)

    def abort(self) -> None:
        """Drop what is buffered and stop: requests not started are cancelled, running ones awaited."""
        self._buffer, self._buffered_bytes = [], 0
        self._in_flight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (0-based): full jitter over a capped exponential."""
        return self._backoff.delay(retry, self._rng)

    def _settle_in_order(self, settled: Settled) -> None:
        """A request's outcome known without sending it: settled after the requests cut before it."""
        self.requests_cut += 1
        if self._pool is None or not self._in_flight:
            self._record(settled)
            return
        done: Future[Settled] = Future()
        done.set_result(settled)
        self._in_flight.append(done)

    def _record(self, settled: Settled) -> None:
        # Only the caller's thread runs this, so the totals need no lock.
        self.indexed += settled.indexed
        self.requests += settled.requests
        self.throttled += settled.throttled
        self.superseded += settled.superseded
        if self._on_settled is not None:
            # Handed over, not kept: a chunk dead-letters them as they settle, and keeping them too would
            # hold every failed record's line until the chunk ends (memory growing with its failures).
            self._on_settled(settled)
        else:
            self._failures.extend(settled.failures)

    def _send(self, batch: list[_Pending], end: int) -> Settled:
        settled = self._send_documents(batch, end)
        records = {id(item.ref) for item in batch}
        return settled if len(records) == len(batch) else _per_record(settled, len(records))

    def _send_documents(self, batch: list[_Pending], end: int) -> Settled:
        settled = Settled(end)
        pending = batch
        last_error = ""
        outcome_unknown = False  # an attempt the node may have applied without our knowing
        answered = False  # the node answered an attempt (a response or an HTTP error)
        attempts = self._node.attempts(self._max_retries + 1)
        tries = retrying(
            self._backoff,
            after_attempts(attempts),
            hooks=Hooks(sleep=self._sleep, rng=self._rng),
        )
        for attempt in tries:
            # Outside the attempt: a turn that never came is not retried here.
            turn = self._gate.wait_turn() if self._gate is not None else 0.0
            with attempt:
                number = attempt.retry_state.attempt_number - 1
                settled.requests += 1
                try:
                    with self._wire.slot():
                        response = self._client.bulk(
                            body=b"".join(item.payload for item in pending), index=self._index
                        )
                except TransportError as error:
                    if error.status_code in FATAL_REQUEST_STATUSES:
                        raise OpenSearchAccessError(_request_reason(error)) from error
                    last_error = _request_reason(error)
                    outcome_unknown = outcome_unknown or error.status_code != 429
                    answered = self._node.saw(error) or answered
                    if not _retryable(error):
                        _fail(settled, pending, last_error)
                        return settled
                    if error.status_code == 429:
                        self._throttled(settled, turn)
                    # Status and type only: reasons can quote field values; logs must not hold documents.
                    logger.warning(
                        "bulk request failed",
                        extra={"status": error.status_code, "attempt": number, "docs": len(pending)},
                    )
                    raise TryAgain from None
                answered = self._node.saw(None)
                pending, item_error = _settle(settled, pending, response, upsert=self._upsert)
                last_error = item_error or last_error
                if not pending:
                    if self._gate is not None:
                        self._gate.succeeded(turn)
                    return settled
                self._throttled(settled, turn)
                logger.warning("bulk items rejected", extra={"attempt": number, "docs": len(pending)})
                raise TryAgain
        # The retries are spent.
        if outcome_unknown:
            pending = self._not_in_index(settled, pending)
        spent = NOT_RETRIED if attempts <= self._max_retries else f"gave up after {self._max_retries} retries"
        _fail(settled, pending, f"{last_error} ({spent})")
        self._node.spent(answered)
        return settled

    def _throttled(self, settled: Settled, turn: float) -> None:
        settled.throttled += 1
        self._wire.throttled()
        if self._gate is not None:
            self._gate.throttled(turn)

    def _not_in_index(self, settled: Settled, pending: list[_Pending]) -> list[_Pending]:
        """Of documents whose write may have been applied, those the index does not hold at their version
        or a later one; the others count as indexed. A failed lookup leaves them all pending (they are then
        dead-lettered, and replaying them is harmless: their versions make the rewrite a no-op)."""
        versioned = [item for item in pending if item.versioned is not None]
        if not versioned or not isinstance(self._client, DocumentLookup):
            return pending
        try:
            with self._wire.slot():
                response = self._client.mget(
                    index=self._index,
                    body={
                        "docs": [
                            {"_id": item.versioned[0], "_source": False}
                            for item in versioned
                            if item.versioned
                        ]
                    },
                )
        except TransportError as error:
            logger.warning("lookup after unknown outcome failed", extra={"status": error.status_code})
            return pending
        held = {
            doc["_id"]: int(doc.get("_version", 0))
            for doc in (response.get("docs", []) if isinstance(response, dict) else [])
            if isinstance(doc, dict) and doc.get("found")
        }
        left = []
        for item in pending:
            if item.versioned is not None and held.get(item.versioned[0], -1) >= item.versioned[1]:
                settled.indexed += 1
                if held[item.versioned[0]] > item.versioned[1]:
                    settled.superseded += 1  # a later line of the same id is what the index holds
            else:
                left.append(item)
        logger.warning(
            "found in the index after an unknown outcome",
            extra={"docs": len(pending), "found": len(pending) - len(left)},
        )
        return left


def _settle(
    settled: Settled, pending: list[_Pending], response: Any, *, upsert: bool = False
) -> tuple[list[_Pending], str]:
    """Count successes, record final failures; the items worth retrying and the last retryable reason.

    A 409 means a later line won for a versioned write, but a lost race for an upsert: that one is resent."""
    items = response.get("items", []) if isinstance(response, dict) else []
    if len(items) != len(pending):
        _fail(settled, pending, f"bulk response has {len(items)} items for {len(pending)} documents")
        return [], ""
    if isinstance(response, dict) and response.get("errors") is False:
        settled.indexed += len(pending)
        return [], ""
    retry: list[_Pending] = []
    retry_reason = ""
    for doc, item in zip(pending, items, strict=True):
        result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = result.get("status", 0)
        error = result.get("error")
        if 200 <= status < 300:
            settled.indexed += 1
        elif (
            status == 409 and not upsert and isinstance(error, dict) and error.get("type") == VERSION_CONFLICT
        ):
            settled.indexed += 1  # the id holds a later line's document: this record's fate is decided
            settled.superseded += 1
        elif status in RETRYABLE_ITEM_STATUSES or (upsert and status == 409):
            retry.append(doc)
            retry_reason = _item_reason(error)
        else:
            settled.failures.append(Failure(doc.ref, _item_reason(error or f"status {status}")))
    return retry, retry_reason


def _per_record(settled: Settled, records: int) -> Settled:
    """A request's document counts as record counts: every document ends indexed or failed, so a record is
    indexed when none of its documents failed, and one failure (the first reason) otherwise."""
    failures: dict[int, Failure] = {}
    for failure in settled.failures:
        failures.setdefault(id(failure.ref), failure)
    settled.failures = list(failures.values())
    settled.indexed = records - len(failures)
    return settled


def _fail(settled: Settled, pending: list[_Pending], reason: str) -> None:
    settled.failures.extend(Failure(item.ref, reason) for item in pending)
