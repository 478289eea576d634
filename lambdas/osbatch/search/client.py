"""OpenSearch clients: SigV4 for AWS domains, plain HTTP for the local node.

Credentials come from the standard AWS chain at request time, never from config or environment values.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import boto3
from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection


def opensearch_client(endpoint: str, region: str, timeout: int = 120) -> OpenSearch:
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
        "connection_class": RequestsHttpConnection,
        "http_compress": True,  # bulk bodies of float vectors compress several-fold
        "pool_maxsize": 8,
        # BulkWriter owns retries (bounded, with jittered backoff); client retries would multiply them.
        "max_retries": 0,
    }
    if secure:
        credentials = boto3.session.Session().get_credentials()
        service = "aoss" if url.hostname and url.hostname.endswith(".aoss.amazonaws.com") else "es"
        options["http_auth"] = AWSV4SignerAuth(credentials, region, service)
    return OpenSearch(**options)
