"""Context `batch_ingest_buckets`: the S3 buckets a `_batch_ingestion` request run by the stack may read."""

from __future__ import annotations

import re
from typing import Any

from osbatch.infra_facts import ConfigError

BATCH_INGEST_BUCKETS_CONTEXT = "batch_ingest_buckets"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def buckets_from_context(value: Any) -> list[str]:
    """A comma-separated string (from `-c`) or a list (from cdk.json); a wildcard is refused, since it
    would let every request read every bucket the account can."""
    if not value:
        return []
    names = [name.strip() for name in (value.split(",") if isinstance(value, str) else value)]
    bad = [name for name in names if name and not _BUCKET.match(name)]
    if bad:
        raise ConfigError(
            f"context {BATCH_INGEST_BUCKETS_CONTEXT}: {', '.join(bad)} is not a bucket name "
            "(list buckets by name; wildcards are not allowed)"
        )
    return [name for name in names if name]
