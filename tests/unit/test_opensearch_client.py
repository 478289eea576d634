"""Which region signs requests: the domain's own, so a cross-region sink is not refused with 403."""

from __future__ import annotations

import pytest
import requests

from osbatch.search.client import GZIP_LEVEL, endpoint_region, is_loopback, opensearch_client

EU_DOMAIN = "https://search-docs-abc123def.eu-west-1.es.amazonaws.com"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def credential_scope(client: object, url: str) -> str:
    """The `<date>/<region>/<service>/aws4_request` scope the client signs a request to url with."""
    auth = client.transport.kwargs["http_auth"]  # type: ignore[attr-defined]
    signed = auth(requests.Request("GET", url).prepare())
    credential = signed.headers["Authorization"].split("Credential=")[1].split(",")[0]
    return str(credential.split("/", 1)[1])


def test_a_domain_in_another_region_is_signed_for_its_own_region() -> None:
    # Given a caller in us-east-1 and a domain in eu-west-1
    # When a client is made for the domain
    client = opensearch_client(EU_DOMAIN, "us-east-1")
    # Then requests are signed for eu-west-1, as the es service of that region
    assert credential_scope(client, f"{EU_DOMAIN}/_bulk").endswith("/eu-west-1/es/aws4_request")


def test_a_serverless_collection_is_signed_as_aoss_in_its_region() -> None:
    collection = "https://abc123xyz.ap-south-1.aoss.amazonaws.com"
    client = opensearch_client(collection, "us-east-1")
    assert credential_scope(client, f"{collection}/docs").endswith("/ap-south-1/aoss/aws4_request")


def test_a_custom_https_endpoint_falls_back_to_the_configured_region() -> None:
    # Given a custom domain name that carries no region
    client = opensearch_client("https://search.example.com", "eu-central-1")
    scope = credential_scope(client, "https://search.example.com/docs")
    assert scope.endswith("/eu-central-1/es/aws4_request")


def test_without_any_region_the_error_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="set AWS_REGION"):
        opensearch_client("https://search.example.com", None)


def test_the_local_node_is_not_signed() -> None:
    client = opensearch_client("http://127.0.0.1:9200")
    assert "http_auth" not in client.transport.kwargs
    assert endpoint_region("http://127.0.0.1:9200") is None


class _Recorder:
    """An HTTP server on loopback that records the encoding and body of one bulk request."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        seen: dict[str, bytes | str | None] = {}

        class Recorder(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                seen["encoding"] = self.headers.get("Content-Encoding")
                seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
                answer = json.dumps({"took": 1, "errors": False, "items": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.seen = seen
        self.server = HTTPServer(("127.0.0.1", 0), Recorder)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.handle_request, daemon=True).start()


def test_bulk_bodies_go_gzip_compressed_at_a_cheap_level() -> None:
    # Given an HTTP server that records what a bulk request carries, and a body of float vectors
    import gzip
    import random

    recorder = _Recorder()
    rng = random.Random(3)
    vectors = "\n".join(str([rng.uniform(-1, 1) for _ in range(384)]) for _ in range(20))
    body = f'{{"index":{{"_id":"1"}}}}\n{{"v":{vectors}}}\n'.encode()

    # When a client that compresses sends a bulk request
    client = opensearch_client(recorder.url, compress=True)
    client.bulk(body=body, index="docs")
    recorder.server.server_close()

    # Then the body went gzip-encoded, decodes to exactly what was sent, and at level 1, not gzip's default 9
    sent = recorder.seen["body"]
    assert recorder.seen["encoding"] == "gzip"
    assert isinstance(sent, bytes)
    assert gzip.decompress(sent) == body
    assert len(sent) == len(gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))
    assert len(sent) > len(gzip.compress(body, compresslevel=9, mtime=0))


def test_a_loopback_node_gets_uncompressed_bodies_and_any_other_host_compressed_ones() -> None:
    # Given a node on loopback
    recorder = _Recorder()

    # When the default client for it sends a bulk request
    opensearch_client(recorder.url).bulk(body=b'{"index":{}}\n{"v":[1]}\n', index="docs")
    recorder.server.server_close()

    # Then the body went as is (compressing would spend the CPU the node shares), while a remote host's
    # client compresses
    assert recorder.seen["encoding"] is None
    assert recorder.seen["body"] == b'{"index":{}}\n{"v":[1]}\n'
    assert all(is_loopback(host) for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(host) for host in ("10.0.0.5", "search-x-abc.us-east-1.es.amazonaws.com"))
    remote = opensearch_client("http://10.0.0.5:9200")
    assert all(connection.http_compress for connection in remote.transport.connection_pool.connections)
