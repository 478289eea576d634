"""OpenSearch clients: SigV4 for AWS domains, plain HTTP for the local node.

Credentials come from the standard AWS chain at request time, never from config or environment values.
Requests to a managed domain or collection are signed for the region its endpoint names, which may not be
the caller's: a pipeline in us-east-1 can write to a domain in eu-west-1.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
from typing import Any
from urllib.parse import urlparse

import boto3
from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

# `search-<domain>-<id>.<region>.es.amazonaws.com` (public) or `vpc-…` (VPC); the id never contains '-'.
DOMAIN_HOST = re.compile(
    r"^(?:search|vpc)-(?P<name>[a-z][a-z0-9-]*)-[a-z0-9]+\.(?P<region>[a-z0-9-]+)\.es\.amazonaws\.com$"
)
# OpenSearch Serverless: `<collection id>.<region>.aoss.amazonaws.com`.
COLLECTION_HOST = re.compile(r"^[a-z0-9]+\.(?P<region>[a-z0-9-]+)\.aoss\.amazonaws\.com$")


# Bulk bodies of float vectors shrink about 2x at any gzip level: level 1 gets 2.08x where opensearch-py's
# default (9) gets 2.25x, at a ninth of the CPU (81 against 914 us per 7.7 KB vector document on an AMD
# EPYC), and level 9 alone cost 20 times what parsing, mapping and serializing the document costs.
GZIP_LEVEL = 1


class FastGzipConnection(RequestsHttpConnection):
    """opensearch-py's requests connection, compressing bodies at GZIP_LEVEL rather than gzip's default 9."""

    def _gzip_compress(self, body: Any) -> bytes:
        return gzip.compress(body, compresslevel=GZIP_LEVEL)


def is_loopback(host: str) -> bool:
    """A node on this machine (the local runtime's): compressing for it spends the CPU both sides share."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_region(endpoint: str) -> str | None:
    """The region an AWS domain or collection endpoint names; None for any other host."""
    host = urlparse(endpoint).hostname or ""
    match = DOMAIN_HOST.match(host) or COLLECTION_HOST.match(host)
    return match["region"] if match else None


def opensearch_client(
    endpoint: str, region: str | None = None, timeout: int = 120, compress: bool | None = None
) -> OpenSearch:
    """A client for endpoint. `region` signs requests to HTTPS hosts whose name gives no region.
    compress: gzip request bodies; by default for every host but a loopback one."""
    if not endpoint:
        raise ValueError(
            "no OpenSearch endpoint: set sink.opensearch.endpoint or create_domain in the pipeline"
        )
    url = urlparse(endpoint)
    secure = url.scheme == "https"
    options: dict[str, Any] = {
        "hosts": [{"host": url.hostname, "port": url.port or (443 if secure else 80)}],
        "use_ssl": secure,
        "verify_certs": secure,
        "timeout": timeout,
        "connection_class": FastGzipConnection,
        # Bulk bodies halve on the wire; on loopback there is no wire, only the CPU the node needs too.
        "http_compress": not is_loopback(url.hostname or "") if compress is None else compress,
        "pool_maxsize": 8,
        # BulkWriter owns retries (bounded, with jittered backoff); client retries would multiply them.
        "max_retries": 0,
    }
    if secure:
        signing_region = endpoint_region(endpoint) or region
        if not signing_region:
            raise ValueError(f"cannot tell which region signs requests to {endpoint}; set AWS_REGION")
        credentials = boto3.session.Session().get_credentials()
        service = "aoss" if COLLECTION_HOST.match(url.hostname or "") else "es"
        options["http_auth"] = AWSV4SignerAuth(credentials, signing_region, service)
    return OpenSearch(**options)
