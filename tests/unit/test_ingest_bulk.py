from __future__ import annotations

import json
import logging
import threading
import tracemalloc
from typing import Any

import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import ConnectionTimeout, RequestError, TransportError

from osbatch.dal.domain_writers import NoWriterSlot
from osbatch.ingest.bulk import BulkWriter, OpenSearchAccessError
from osbatch.ingest.node_gone import NOT_RETRIED
from osbatch.models.ingest import MappedDoc, RecordRef

MAPPER_REASON = (
    "mapper_parsing_exception: failed to parse field [chunk_embedding] of type [knn_vector] in document with "
    "id '2' (caused by illegal_argument_exception: Vector dimension mismatch. Expected: 3, Actual: 2)"
)
REJECTED_REASON = "rejected_execution_exception: rejected execution of coordinating operation"
MAPPER_ERROR = {
    "type": "mapper_parsing_exception",
    "reason": "failed to parse field [chunk_embedding] of type [knn_vector] in document with id '2'",
    "caused_by": {
        "type": "illegal_argument_exception",
        "reason": "Vector dimension mismatch. Expected: 3, Actual: 2",
    },
}
REJECTED = {"type": "rejected_execution_exception", "reason": "rejected execution of coordinating operation"}


class ScriptedOpenSearch:
    """Answers bulk requests from a script (a response, or an exception to raise); keeps each request."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.requests: list[list[dict[str, Any]]] = []
        self.request_bytes: list[int] = []
        self.indexes: list[str] = []

    def bulk(self, *, body: bytes, index: str | None = None) -> Any:
        self.request_bytes.append(len(body))
        self.requests.append([json.loads(line) for line in body.decode().splitlines()])
        self.indexes.append(str(index))
        answer = self.script.pop(0) if self.script else "ok"
        if isinstance(answer, Exception):
            raise answer
        if answer == "ok":
            return items(*([201] * (len(self.requests[-1]) // 2)))
        return answer

    def ids(self, request: int) -> list[str | None]:
        return [line["index"].get("_id") for line in self.requests[request][0::2]]


def items(*outcomes: int | tuple[int, dict[str, Any]]) -> dict[str, Any]:
    """A bulk response: an int is a status, a (status, error) pair a failed item."""
    result = []
    for outcome in outcomes:
        status, error = outcome if isinstance(outcome, tuple) else (outcome, None)
        result.append({"index": {"status": status, **({"error": error} if error else {})}})
    return {"took": 1, "errors": any(isinstance(o, tuple) for o in outcomes), "items": result}


def doc(n: int, text: str = "a passage") -> tuple[MappedDoc, RecordRef]:
    body = {"chunk": text, "chunk_embedding": [0.1, 0.2, 0.3]}
    return MappedDoc(str(n), body), RecordRef(
        offset=n * 100, line=n, raw=json.dumps({"_id": str(n)}).encode()
    )


def writer(client: ScriptedOpenSearch, **overrides: Any) -> tuple[BulkWriter, list[float]]:
    """A writer on the client, and the list its sleeps are recorded in."""
    sleeps: list[float] = []
    settings: dict[str, Any] = {
        "max_bytes": 1024 * 1024,
        "max_retries": 3,
        "initial_backoff": 0.5,
        "max_backoff": 30.0,
        "sleep": sleeps.append,
        "rng": lambda: 1.0,  # the top of the jitter range, so sleeps show the backoff ceiling itself
    }
    settings.update(overrides)
    return BulkWriter(client, "msmarco", **settings), sleeps


def test_documents_go_as_index_actions_with_their_ids() -> None:
    # Given a cluster that accepts everything
    client = ScriptedOpenSearch()
    bulk, sleeps = writer(client)

    # When two documents, one without an id, are added and the writer closed
    bulk.add(*doc(1))
    bulk.add(MappedDoc(None, {"chunk": "no id"}), RecordRef(0, None, b"{}"))
    failures = bulk.close()

    # Then one request carries index actions (idempotent by _id) and the bodies, to the pipeline's index
    assert client.requests == [
        [
            {"index": {"_id": "1"}},
            {"chunk": "a passage", "chunk_embedding": [0.1, 0.2, 0.3]},
            {"index": {}},
            {"chunk": "no id"},
        ]
    ]
    assert client.indexes == ["msmarco"]
    assert (bulk.indexed, failures, sleeps) == (2, [], [])


def test_a_throttled_request_is_retried_whole_after_a_backoff() -> None:
    # Given a cluster that answers 429 once
    client = ScriptedOpenSearch(TransportError(429, "too_many_requests", {}))
    bulk, sleeps = writer(client)

    # When three documents are written
    for n in range(3):
        bulk.add(*doc(n))
    failures = bulk.close()

    # Then the same request is sent again after the first backoff, and all are indexed
    assert client.ids(0) == client.ids(1) == ["0", "1", "2"]
    assert (bulk.indexed, failures, sleeps) == (3, [], [0.5])


def test_connection_errors_are_retried() -> None:
    # Given a request that times out once
    client = ScriptedOpenSearch(ConnectionTimeout("TIMEOUT", "read timed out", None))
    bulk, sleeps = writer(client)

    # When a document is written
    bulk.add(*doc(1))
    failures = bulk.close()

    # Then it is sent again after a backoff and indexed
    assert (len(client.requests), bulk.indexed, failures, sleeps) == (2, 1, [], [0.5])


def test_only_items_rejected_with_429_are_retried() -> None:
    # Given a cluster that rejects the middle item once
    client = ScriptedOpenSearch(items(201, (429, REJECTED), 201))
    bulk, sleeps = writer(client)

    # When three documents are written
    for n in range(3):
        bulk.add(*doc(n))
    failures = bulk.close()

    # Then the retry carries only the rejected document, and none is indexed twice
    assert client.ids(1) == ["1"]
    assert (bulk.indexed, failures, sleeps) == (3, [], [0.5])


def test_a_join_update_that_lost_a_race_is_resent_not_counted_as_superseded() -> None:
    # Given a join (update + doc_as_upsert) whose middle item loses a race with another file's update,
    # even after OpenSearch's own retries
    conflict = {"type": "version_conflict_engine_exception", "reason": "[1]: version conflict"}
    client = ScriptedOpenSearch(items(200, (409, conflict), 200))
    bulk, sleeps = writer(client, upsert=True)
    # When three documents are written
    for n in range(3):
        bulk.add(*doc(n))
    failures = bulk.close()
    # Then every update asks OpenSearch to re-apply it on conflict, and the lost one is sent again: its
    # fields would otherwise be missing from the joined document
    assert [line["update"]["retry_on_conflict"] for line in client.requests[0][0::2]] == [5, 5, 5]
    assert [line["update"]["_id"] for line in client.requests[1][0::2]] == ["1"]
    assert (bulk.indexed, bulk.superseded, failures, sleeps) == (3, 0, [], [0.5])


def test_a_mapping_error_becomes_a_failure_with_opensearchs_reason() -> None:
    # Given a document the index mapping rejects
    client = ScriptedOpenSearch(items(201, (400, MAPPER_ERROR)))
    bulk, sleeps = writer(client)

    # When it is written with a good one
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    failures = bulk.close()

    # Then it fails at once (retrying cannot help), with the error type, reason and cause, and keeps its ref
    assert (len(client.requests), sleeps) == (1, [])
    assert [(f.ref.line, f.reason) for f in failures] == [(2, MAPPER_REASON)]
    assert bulk.indexed == 1


def test_exhausted_5xx_retries_fail_every_document_with_the_last_error() -> None:
    # Given a cluster that is down for every attempt
    unavailable = TransportError(
        503,
        "cluster_block_exception",
        {"error": {"type": "cluster_block_exception", "reason": "blocked by: [SERVICE_UNAVAILABLE]"}},
    )
    client = ScriptedOpenSearch(*[unavailable] * 5)
    bulk, sleeps = writer(client, max_retries=4, max_backoff=1.5)

    # When two documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    failures = bulk.close()

    # Then it tried 1 + max_retries times, backing off exponentially up to the cap, and nothing is lost:
    # both documents come back as failures naming the error
    assert len(client.requests) == 5
    assert sleeps == [0.5, 1.0, 1.5, 1.5]
    assert [f.ref.line for f in failures] == [1, 2]
    assert {f.reason for f in failures} == {
        "HTTP 503 cluster_block_exception: blocked by: [SERVICE_UNAVAILABLE] (gave up after 4 retries)"
    }


def test_item_rejections_that_never_clear_become_failures() -> None:
    # Given a cluster that rejects one item on every attempt
    client = ScriptedOpenSearch(*[items(201, (429, REJECTED))] + [items((429, REJECTED))] * 2)
    bulk, sleeps = writer(client, max_retries=2)

    # When two documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    failures = bulk.close()

    # Then the rejected one fails with the rejection's reason once the retries are spent
    assert sleeps == [0.5, 1.0]
    assert [(f.ref.line, f.reason) for f in failures] == [(2, f"{REJECTED_REASON} (gave up after 2 retries)")]
    assert bulk.indexed == 1


def test_backoff_is_full_jitter_under_a_capped_exponential() -> None:
    # Given a writer whose random source returns a quarter
    bulk, _ = writer(ScriptedOpenSearch(), rng=lambda: 0.25, initial_backoff=1.0, max_backoff=8.0)

    # When the backoff of successive retries is asked for
    delays = [bulk.backoff(retry) for retry in range(6)]

    # Then it is the random fraction of min(cap, initial * 2^retry)
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_a_client_error_fails_the_batch_without_retrying() -> None:
    # Given a request the cluster refuses as malformed
    error = RequestError(
        400, "illegal_argument_exception", {"error": {"type": "illegal_argument_exception", "reason": "bad"}}
    )
    client = ScriptedOpenSearch(error)
    bulk, sleeps = writer(client)

    # When a document is written
    bulk.add(*doc(1))
    failures = bulk.close()

    # Then there is no retry and the document fails with the reason
    assert (len(client.requests), sleeps) == (1, [])
    assert [f.reason for f in failures] == ["HTTP 400 illegal_argument_exception: bad"]


def test_an_authorization_error_fails_the_chunk_instead_of_dead_lettering_everything() -> None:
    # Given credentials the cluster refuses
    client = ScriptedOpenSearch(TransportError(403, "security_exception", {}))
    bulk, _ = writer(client)

    # When a document is written
    bulk.add(*doc(1))

    # Then the writer raises, so the chunk can be re-run once permissions are fixed
    with pytest.raises(OpenSearchAccessError, match="HTTP 403"):
        bulk.close()


def test_requests_are_split_to_stay_under_max_bytes() -> None:
    # Given documents of ~120 bytes each and a 300-byte request limit
    client = ScriptedOpenSearch()
    bulk, _ = writer(client, max_bytes=300)

    # When five are written
    for n in range(5):
        bulk.add(*doc(n, text="x" * 40))
    failures = bulk.close()

    # Then they go two by two, no request exceeds the limit, and all are indexed
    assert [client.ids(r) for r in range(len(client.requests))] == [["0", "1"], ["2", "3"], ["4"]]
    assert max(client.request_bytes) <= 300
    assert (bulk.indexed, failures) == (5, [])


def test_a_document_bigger_than_max_bytes_goes_alone() -> None:
    # Given a limit smaller than one document
    client = ScriptedOpenSearch()
    bulk, _ = writer(client, max_bytes=50)

    # When two documents are written
    bulk.add(*doc(1, text="y" * 200))
    bulk.add(*doc(2))
    bulk.close()

    # Then each is its own request rather than being dropped
    assert [client.ids(0), client.ids(1)] == [["1"], ["2"]]
    assert bulk.indexed == 2


def test_retries_never_log_document_content(caplog: pytest.LogCaptureFixture) -> None:
    # Given a document with recognizable text, and a cluster that throttles then rejects items
    client = ScriptedOpenSearch(TransportError(429, "too_many_requests", {}), items((429, REJECTED)))
    bulk, _ = writer(client)

    # When it is written, with logging captured
    with caplog.at_level(logging.DEBUG, logger="osbatch.ingest.bulk"):
        bulk.add(*doc(1, text="SECRET-PASSAGE"))
        bulk.close()

    # Then the retries were logged, without the document
    assert len(caplog.records) == 2
    assert all(
        "SECRET-PASSAGE" not in record.getMessage() + str(record.__dict__) for record in caplog.records
    )


class GatedOpenSearch(ScriptedOpenSearch):
    """Holds every bulk request until `release` is set, counting how many are held at once."""

    def __init__(self, *script: Any) -> None:
        super().__init__(*script)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.held = 0
        self.most_held = 0
        self.all_held = threading.Event()
        self.expect = 0

    def bulk(self, *, body: bytes, index: str | None = None) -> Any:
        with self.lock:
            self.held += 1
            self.most_held = max(self.most_held, self.held)
            if self.held >= self.expect:
                self.all_held.set()
        self.release.wait()
        with self.lock:
            self.held -= 1
            return super().bulk(body=body, index=index)


def test_requests_run_concurrently_up_to_the_limit_and_settle_in_order() -> None:
    # Given a cluster that holds requests, and a writer allowed 3 in flight with one document per request
    client = GatedOpenSearch()
    client.expect = 3
    settled: list[int] = []
    bulk, _ = writer(client, max_bytes=100, concurrency=3, on_settled=lambda s: settled.append(s.end))

    # When six documents are added from another thread while the cluster holds the requests
    adder = threading.Thread(target=lambda: [bulk.add(*doc(n), end=n + 1) for n in range(6)])
    adder.start()
    assert client.all_held.wait(timeout=30)

    # Then exactly 3 requests are in flight, never more, and after release all settle in input order
    with client.lock:
        assert client.held == 3
    client.release.set()
    adder.join()
    failures = bulk.close()
    assert client.most_held == 3
    assert settled == [1, 2, 3, 4, 5, 6]
    assert (bulk.indexed, bulk.requests, failures) == (6, 6, [])


def test_an_access_error_in_a_concurrent_request_still_fails_the_chunk() -> None:
    # Given a cluster that refuses the credentials, and a concurrent writer
    client = ScriptedOpenSearch(TransportError(403, "security_exception", {}))
    bulk, _ = writer(client, max_bytes=100, concurrency=2)

    # When documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))

    # Then closing raises instead of dead-lettering
    with pytest.raises(OpenSearchAccessError):
        bulk.close()


def test_a_document_over_the_request_cap_is_a_failure_without_a_request() -> None:
    # Given a 1 KiB request cap
    client = ScriptedOpenSearch()
    bulk, _ = writer(client, max_bytes=1024, max_request_bytes=1024)

    # When a 2 KiB document is written between two small ones
    bulk.add(*doc(1))
    bulk.add(*doc(2, text="z" * 2048))
    bulk.add(*doc(3))
    failures = bulk.close()

    # Then only the big one fails, with the sizes in the reason, and it was never sent
    assert [f.ref.line for f in failures] == [2]
    assert "over the 1024-byte request cap" in failures[0].reason
    assert [i for r in range(len(client.requests)) for i in client.ids(r)] == ["1", "3"]
    assert bulk.indexed == 2


def test_throttling_is_counted_for_the_concurrency_limiter() -> None:
    # Given a cluster that throttles a request once and then one item once
    client = ScriptedOpenSearch(TransportError(429, "too_many_requests", {}), items(201, (429, REJECTED)))
    bulk, _ = writer(client)

    # When two documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    bulk.close()

    # Then both 429s are counted, and only the rejected item was resent
    assert bulk.throttled == 2
    assert client.ids(2) == ["2"]
    assert bulk.indexed == 2


class OverloadedOpenSearch(ScriptedOpenSearch):
    """Refuses the first request with 429 (its indexing pressure limit), then holds each request until a
    second one is on the wire with it (or a second has passed), counting how many were on the wire at once."""

    def __init__(self) -> None:
        super().__init__(TransportError(429, "rejected_execution_exception", {"error": REJECTED}))
        self.lock = threading.Lock()
        self.refused = False
        self.on_wire = 0
        self.most_on_wire_after_429 = 0
        self.overlapped = threading.Event()

    def bulk(self, *, body: bytes, index: str | None = None) -> Any:
        with self.lock:
            if not self.refused:
                self.refused = True
                return super().bulk(body=body, index=index)  # raises the scripted 429
            self.on_wire += 1
            self.most_on_wire_after_429 = max(self.most_on_wire_after_429, self.on_wire)
            if self.on_wire > 1:
                self.overlapped.set()
        self.overlapped.wait(timeout=1)  # long enough for a second request to join, were it allowed to
        with self.lock:
            self.on_wire -= 1
            return super().bulk(body=body, index=index)


def test_after_a_429_the_writer_sends_one_request_at_a_time_for_the_rest_of_its_chunk() -> None:
    # Given a node that refuses the first request with 429 (indexing pressure), and a writer allowed 2
    # requests in flight, one document per request
    client = OverloadedOpenSearch()
    bulk, _ = writer(client, max_bytes=100, concurrency=2)

    # When four documents are written
    for n in range(4):
        bulk.add(*doc(n), end=n + 1)
    failures = bulk.close()

    # Then after the 429 no two requests were on the wire together, and every document was indexed
    assert client.most_on_wire_after_429 == 1 and not client.overlapped.is_set()
    assert (bulk.indexed, bulk.throttled, failures) == (4, 1, [])


class ApplyingThenThrottling(ScriptedOpenSearch):
    """The load bench's case: the first request times out although the node applied it, every retry is
    answered 429; `_mget` answers from what was applied (versions as OpenSearch keeps external ones)."""

    def __init__(self, retries: int, lookup_fails: bool = False) -> None:
        super().__init__(
            ConnectionTimeout("TIMEOUT", "read timed out", None),
            *[TransportError(429, "rejected_execution_exception", {"error": REJECTED})] * retries,
        )
        self.held: dict[str, int] = {}
        self.lookups: list[list[str]] = []
        self.lookup_fails = lookup_fails

    def bulk(self, *, body: bytes, index: str | None = None) -> Any:
        if not self.requests:  # the first attempt lands before its answer is lost
            lines = [json.loads(line) for line in body.decode().splitlines()]
            for action in lines[0::2]:
                meta = action["index"]
                if "version" in meta and meta["version"] >= self.held.get(meta["_id"], 0):  # external_gte
                    self.held[meta["_id"]] = meta["version"]
        return super().bulk(body=body, index=index)

    def mget(self, *, index: Any, body: Any, params: Any = None) -> Any:
        self.lookups.append([d["_id"] for d in body["docs"]])
        if self.lookup_fails:
            raise TransportError(429, "rejected_execution_exception", {"error": REJECTED})
        return {
            "docs": [
                {"_id": d["_id"], "found": True, "_version": self.held[d["_id"]]}
                if d["_id"] in self.held
                else {"_id": d["_id"], "found": False}
                for d in body["docs"]
            ]
        }


def test_a_request_applied_although_it_timed_out_is_indexed_not_dead_lettered() -> None:
    # Given a request the node applied while its answer timed out, and retries that all meet 429s,
    # and a later line of id 2 already in the index
    client = ApplyingThenThrottling(retries=3)
    bulk, _ = writer(client)

    # When three versioned documents are written, one of them not versioned (no id)
    bulk.add(*doc(1), version=10)
    bulk.add(*doc(2), version=11)
    bulk.add(MappedDoc(None, {"chunk": "no id"}), RecordRef(300, 3, b"{}"))
    client.held["2"] = 99  # written by a later line, in a request of its own
    failures = bulk.close()

    # Then once the retries are spent, the index is asked which documents it holds at their version or a
    # later one: those two count as indexed (one superseded), and only the unversioned one is a failure
    assert client.lookups == [["1", "2"]]
    assert (bulk.indexed, bulk.superseded) == (2, 1)
    assert [f.ref.line for f in failures] == [3]
    assert "gave up after 3 retries" in failures[0].reason


def test_documents_whose_write_was_refused_every_time_are_not_looked_up() -> None:
    # Given a cluster that answers 429 to every attempt (the outcome of each is known: not applied)
    client = ScriptedOpenSearch(
        *[TransportError(429, "rejected_execution_exception", {"error": REJECTED})] * 4
    )
    bulk, _ = writer(client)

    # When a versioned document is written
    bulk.add(*doc(1), version=10)
    failures = bulk.close()

    # Then it fails without asking the index (the fake has no mget: a lookup would raise)
    assert [f.ref.line for f in failures] == [1]
    assert bulk.indexed == 0


def test_a_failed_lookup_dead_letters_the_documents_as_before() -> None:
    # Given a request applied although it timed out, retries that meet 429s, and a lookup refused too
    client = ApplyingThenThrottling(retries=3, lookup_fails=True)
    bulk, _ = writer(client)

    # When a versioned document is written
    bulk.add(*doc(1), version=10)
    failures = bulk.close()

    # Then it is a failure (dead-lettered; replaying it rewrites the same version harmlessly)
    assert client.lookups == [["1"]]
    assert [f.ref.line for f in failures] == [1]
    assert bulk.indexed == 0


class RecordingGate:
    """A domain's writer limit as the writer sees it (dal/domain_writers.py WriterTurns), recording the
    order of turns, 429 reports and requests; `refuse_after` turns, the turn never comes (NoWriterSlot)."""

    def __init__(self, events: list[str], refuse_after: int | None = None) -> None:
        self.events = events
        self.refuse_after = refuse_after

    def wait_turn(self) -> float:
        turns = self.events.count("turn")
        if self.refuse_after is not None and turns >= self.refuse_after:
            raise NoWriterSlot("paused for older writers past its deadline")
        self.events.append("turn")
        return float(turns)  # the turn's number stands for its time

    def throttled(self, turn: float) -> None:
        self.events.append(f"429 on turn {turn:g}")

    def succeeded(self, turn: float) -> None:
        self.events.append(f"taken on turn {turn:g}")


class TurnTakingOpenSearch(ScriptedOpenSearch):
    def __init__(self, events: list[str], *script: Any) -> None:
        super().__init__(*script)
        self.events = events

    def bulk(self, *, body: bytes, index: str | None = None) -> Any:
        self.events.append("request")
        return super().bulk(body=body, index=index)


def test_every_attempt_waits_for_its_turn_and_its_outcome_reaches_the_domain_limit() -> None:
    # Given a domain that answers one request 429 and one item 429
    events: list[str] = []
    client = TurnTakingOpenSearch(
        events,
        TransportError(429, "rejected_execution_exception", {"error": REJECTED}),
        items(201, (429, REJECTED)),
    )
    bulk, _ = writer(client, gate=RecordingGate(events))

    # When two documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    failures = bulk.close()

    # Then each attempt went out only after its turn, and each 429 and the final success were reported to
    # the domain's limit with the turn of the request they answer
    assert events == [
        "turn", "request", "429 on turn 0",
        "turn", "request", "429 on turn 1",
        "turn", "request", "taken on turn 2",
    ]  # fmt: skip
    assert (bulk.indexed, bulk.throttled, failures) == (2, 2, [])


def test_a_turn_that_never_comes_fails_the_attempt_instead_of_dead_lettering() -> None:
    # Given a domain whose limit never gives this writer a second turn
    events: list[str] = []
    client = TurnTakingOpenSearch(
        events, TransportError(429, "rejected_execution_exception", {"error": REJECTED})
    )
    bulk, _ = writer(client, gate=RecordingGate(events, refuse_after=1))

    # When a document is written
    bulk.add(*doc(1))

    # Then the writer raises (the chunk is retried from its checkpoint) and dead-letters nothing
    with pytest.raises(NoWriterSlot):
        bulk.close()
    assert events == ["turn", "request", "429 on turn 0"]


def refused() -> OpenSearchConnectionError:
    """What opensearch-py raises when nothing listens on the node's port."""
    return OpenSearchConnectionError("N/A", "Failed to establish a new connection: [Errno 111] refused", None)


def test_once_the_node_answered_none_of_a_requests_attempts_later_requests_get_one_each() -> None:
    # Given a node that is down: every connection refused
    client = ScriptedOpenSearch(*[refused()] * 12)
    bulk, sleeps = writer(client, max_bytes=10)  # one document per request

    # When three documents are written
    for n in (1, 2, 3):
        bulk.add(*doc(n))
    failures = bulk.close()

    # Then the first request spends its 3 retries, the two after it are tried once each and fail at once,
    # every document a failure with the connection error and why it was not retried
    assert (len(client.requests), sleeps) == (4 + 1 + 1, [0.5, 1.0, 2.0])
    assert [f.ref.line for f in failures] == [1, 2, 3]
    assert all(f.reason.startswith("ConnectionError: ") for f in failures)
    assert failures[0].reason.endswith("(gave up after 3 retries)")
    assert failures[1].reason.endswith(f"({NOT_RETRIED})") and failures[2].reason == failures[1].reason


def test_an_answer_from_the_node_gives_the_next_requests_their_retries_back() -> None:
    # Given a node down for one request's retries and one more attempt, then back, then refusing twice
    client = ScriptedOpenSearch(*[refused()] * 5, "ok", refused(), refused(), "ok")
    bulk, _ = writer(client, max_bytes=10)

    # When four documents are written
    for n in (1, 2, 3, 4):
        bulk.add(*doc(n))
    failures = bulk.close()

    # Then the first two fail (the second after one attempt), the third is indexed at its one attempt,
    # and the fourth, the node being back, retries in full and is indexed
    assert [f.ref.line for f in failures] == [1, 2]
    assert bulk.indexed == 2
    assert len(client.requests) == 4 + 1 + 1 + 3


def test_a_node_that_answers_too_slowly_keeps_every_requests_retries() -> None:
    # Given a node that is slow, not gone: every attempt times out (it may be applying them)
    client = ScriptedOpenSearch(*[ConnectionTimeout("TIMEOUT", "read timed out", None)] * 8)
    bulk, _ = writer(client, max_bytes=10)

    # When two documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    failures = bulk.close()

    # Then each request spends its own 3 retries
    assert len(client.requests) == 8
    assert all(f.reason.endswith("(gave up after 3 retries)") for f in failures)


def test_a_request_the_node_answered_with_an_error_does_not_take_it_as_gone() -> None:
    # Given a node answering 503 to every attempt of the first request, then refusing connections
    unavailable = TransportError(503, "unavailable_shards_exception", {})
    client = ScriptedOpenSearch(*[unavailable] * 4, *[refused()] * 4)
    bulk, _ = writer(client, max_bytes=10)

    # When two documents are written
    bulk.add(*doc(1))
    bulk.add(*doc(2))
    bulk.close()

    # Then the second request still gets all its retries: the node answered the first
    assert len(client.requests) == 8


class RejectingEveryItem:
    """Answers every document of every request with a mapping error, and keeps nothing of the requests (so
    what the test measures is the writer's memory)."""

    def bulk(self, *, body: bytes, index: str | None = None) -> Any:
        return items(*([(400, MAPPER_ERROR)] * (body.count(b"\n") // 2)))


def test_failures_handed_to_on_settled_are_not_kept_until_the_writer_closes() -> None:
    # Given a writer whose failures a chunk dead-letters as each request settles (on_settled), requests of
    # 16 KiB, and a cluster that refuses every document
    max_bytes = 16 * 1024
    failed: list[int] = []
    bulk, _ = writer(
        RejectingEveryItem(), max_bytes=max_bytes, on_settled=lambda s: failed.append(len(s.failures))
    )
    tracemalloc.start()
    try:
        # When 2,000 records of 1 KiB lines (125 requests' worth, about 2 MB of lines) are written
        for n in range(2000):
            raw = json.dumps({"_id": str(n), "pad": "x" * 1000}).encode()
            bulk.add(MappedDoc(str(n), {"chunk": "a passage"}), RecordRef(n * 1024, n, raw))
        failures = bulk.close()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then every record failed once, through on_settled, and the writer holds a few requests' worth at most
    # (keeping the failures held 2.9 MB here): its memory does not grow with the records that failed
    assert sum(failed) == 2000
    assert held < 8 * max_bytes
    assert failures == []
