"""The documents an earlier version of the same S3 key wrote that the new version lacks.

Every document osbatch embeds carries the S3 object it came from and its id as a keyword
(contracts.SOURCE_FIELD, ID_FIELD). Prepare, which holds the new version's ids (steps/support/seen_ids.py),
pages through the index's documents of the same source object by ID_FIELD (`search_after`, ids only) and
keeps those the new version lacks: their count is the report's `stale`, and the ids go to
contracts.job_stale_ids_key. With `source.sync: mirror` a job that ends COMPLETED deletes them
(`_delete_by_query` of those ids that still come from this source; OpenSearch, "Delete by query":
https://docs.opensearch.org/latest/api-reference/document-apis/delete-by-query/) and counts them as
`deleted`. Any other ending deletes nothing: some records of the new version were not written, and their old
documents would go with nothing in their place. `source.sync: keep` (the default) only counts them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osbatch import jsonlines
from osbatch.contracts import ID_FIELD, SOURCE_FIELD
from osbatch.ingest.readers import object_lines

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PAGE = 5000  # ids a search page returns (no _source: a few hundred KB)
DELETE_BATCH = 1000  # ids per _delete_by_query
SPOOL_BYTES = 16 * 1024 * 1024  # stale ids past this spill to /tmp


@dataclass(frozen=True)
class SyncResult:
    stale: int = 0  # left in the index (sync: keep, or a job that did not complete)
    deleted: int = 0  # deleted (sync: mirror)
    note: str | None = None


def stale_ids(client: Any, index: str, *, source_uri: str, current: Callable[[str], bool]) -> Iterator[str]:
    """The ids of the documents from `source_uri` for which `current(id)` is False, a page at a time."""
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {
            "size": PAGE,
            "_source": False,
            "query": {"bool": {"filter": [{"term": {SOURCE_FIELD: source_uri}}]}},
            "sort": [{ID_FIELD: "asc"}],
        }
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=index, body=body)["hits"]["hits"]
        for hit in hits:
            if not current(str(hit["_id"])):
                yield str(hit["_id"])
        if len(hits) < PAGE:
            return
        after = hits[-1]["sort"]


def delete_stale(client: Any, index: str, *, source_uri: str, ids: Iterable[str]) -> int:
    """Delete the ids that still come from `source_uri` (another upload may have taken one over since)."""
    deleted, batch = 0, []
    for doc_id in ids:
        batch.append(doc_id)
        if len(batch) >= DELETE_BATCH:
            deleted += _delete(client, index, source_uri, batch)
            batch = []
    if batch:
        deleted += _delete(client, index, source_uri, batch)
    return deleted


def _delete(client: Any, index: str, source_uri: str, ids: list[str]) -> int:
    body = {"query": {"bool": {"filter": [{"ids": {"values": ids}}, {"term": {SOURCE_FIELD: source_uri}}]}}}
    response = client.delete_by_query(
        index=index, body=body, params={"conflicts": "proceed", "refresh": "true"}
    )
    return int(response.get("deleted", 0))


def settle(
    client: Any,
    index: str,
    *,
    source_uri: str,
    stale: int,
    ids: Callable[[], Iterable[str]],
    mirror: bool,
    completed: bool,
) -> SyncResult:
    """At the job's end: `stale` (Prepare's count) kept, or with mirror on a completed job deleted."""
    if not stale:
        return SyncResult()
    if mirror and completed:
        return SyncResult(deleted=delete_stale(client, index, source_uri=source_uri, ids=ids()))
    note = None
    if mirror:
        note = (
            f"source.sync is mirror, but the job did not complete: {stale} documents of an earlier "
            "version were kept"
        )
    return SyncResult(stale=stale, note=note)


def write_stale(
    client: Any,
    index: str,
    *,
    source_uri: str,
    current: Callable[[str], bool],
    s3: S3Client,
    bucket: str,
    key: str,
) -> int:
    """Prepare's part: the stale ids written to `key` (a JSON string a line; no object if none); how many."""
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for doc_id in stale_ids(client, index, source_uri=source_uri, current=current):
            spool.write(jsonlines.dump_line(doc_id))
            count += 1
        if count:
            spool.seek(0)
            s3.upload_fileobj(spool, bucket, key)
    return count


def read_stale(s3: S3Client, bucket: str, key: str) -> Iterator[str]:
    """Finalize's part: the ids Prepare wrote."""
    for _, raw in object_lines(s3, bucket, key):
        if raw.strip():
            yield str(jsonlines.loads(raw))
