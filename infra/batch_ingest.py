"""Context `batch_ingest_buckets`: the S3 buckets a `_batch_ingestion` request run by the stack may read.

Each entry is `bucket` (a bucket of the stack's own account) or `bucket:account` (a bucket another account
owns). The grant holds each to that owner (s3:ResourceAccount), so a bucket of the same name that someone
else owns, after the expected one is deleted, is not read.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from osbatch.infra_facts import ConfigError

BATCH_INGEST_BUCKETS_CONTEXT = "batch_ingest_buckets"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT = re.compile(r"^\d{12}$")


class SourceBucket(NamedTuple):
    name: str
    account: str | None  # None: the stack's own account


def buckets_from_context(value: Any) -> list[str]:
    """A comma-separated string (from `-c`) or a list (from cdk.json); a wildcard is refused, since it
    would let every request read every bucket the account can."""
    if not value:
        return []
    names = [name.strip() for name in (value.split(",") if isinstance(value, str) else value)]
    bad = [name for name in names if name and not _valid(name)]
    if bad:
        raise ConfigError(
            f"context {BATCH_INGEST_BUCKETS_CONTEXT}: {', '.join(bad)} is not a bucket name, or a bucket "
            "name and its owner's 12-digit account as bucket:account (list buckets by name; no wildcards)"
        )
    return [name for name in names if name]


def source_bucket(entry: str) -> SourceBucket:
    name, _, account = entry.partition(":")
    return SourceBucket(name, account or None)


def _valid(entry: str) -> bool:
    name, colon, account = entry.partition(":")
    return bool(_BUCKET.match(name)) and (not colon or bool(_ACCOUNT.match(account)))
