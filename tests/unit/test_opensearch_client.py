"""Which region signs requests: the domain's own, so a cross-region sink is not refused with 403."""

from __future__ import annotations

import pytest
import requests

from osbatch.search.client import endpoint_region, opensearch_client

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


def test_bulk_bodies_go_gzip_compressed() -> None:
    # Given an HTTP server that records what a bulk request carries
    import gzip
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

    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.handle_request, daemon=True).start()
    body = b'{"index":{"_id":"1"}}\n{"v":[0.1,0.2]}\n'

    # When the local-node client sends a bulk request
    client = opensearch_client(f"http://127.0.0.1:{server.server_port}")
    client.bulk(body=body, index="docs")
    server.server_close()

    # Then the body went gzip-encoded and decodes to exactly what was sent
    assert seen["encoding"] == "gzip"
    assert isinstance(seen["body"], bytes)
    assert gzip.decompress(seen["body"]) == body
