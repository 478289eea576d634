"""reliability/fault_proxy.py: each fault does to a bulk request what it says, between two real sockets."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reliability.fault_proxy import FaultProxy

BODY = b'{"took": 1, "errors": false, "items": [' + b'{"index": {"status": 201}},' * 50 + b"{}]}"


class Node(BaseHTTPRequestHandler):
    """Stands in for OpenSearch: counts the bulk requests it applied, answers with a bulk-sized body."""

    applied: list[bytes] = []

    def do_POST(self) -> None:
        self.applied.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    Node.applied = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy(server.server_address[1]).running() as running:
        yield running
    server.shutdown()


def bulk(proxy: FaultProxy, timeout: float = 5.0) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        connection.request("POST", "/index/_bulk", body=b'{"index": {}}\n{}\n')
        return connection.getresponse().read()
    finally:
        connection.close()


def test_without_a_fault_the_bulk_passes_through(proxy: FaultProxy) -> None:
    assert bulk(proxy) == BODY and len(Node.applied) == 1


def test_a_reset_bulk_never_reaches_the_node(proxy: FaultProxy) -> None:
    # Given a reset armed
    proxy.arm("reset")
    # When a bulk is sent / Then the client's connection breaks and the node saw nothing
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        bulk(proxy)
    assert Node.applied == [] and proxy.plan.applied == ["reset"]
    # And the next one passes
    assert bulk(proxy) == BODY


def test_a_timed_out_bulk_was_applied_by_the_node(proxy: FaultProxy) -> None:
    # Given a swallowed response armed
    proxy.arm("timeout")
    # When a bulk is sent with a short read timeout / Then the client times out, yet the node applied it
    with pytest.raises(TimeoutError):
        bulk(proxy, timeout=0.5)
    assert len(Node.applied) == 1


def test_a_cut_response_leaves_the_outcome_unknown_to_the_client(proxy: FaultProxy) -> None:
    # Given a response cut after 100 bytes armed
    proxy.arm("cut")
    # When a bulk is sent / Then the client reads a broken response, and the node applied it
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        bulk(proxy)
    assert len(Node.applied) == 1


def test_a_slow_response_arrives_whole(proxy: FaultProxy) -> None:
    # Given a slow response armed
    proxy.plan.slow_seconds = 0.2
    proxy.arm("slow")
    # When a bulk is sent / Then it arrives whole
    assert bulk(proxy) == BODY and proxy.plan.applied == ["slow"]


def test_an_unknown_fault_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        proxy.arm("partition")
