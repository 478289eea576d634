"""The source and sink of an OSI pipeline as osbatch's `source:` and `sink:` (for `osbatch import-osi`).

OSI scans S3 on a schedule (Data Prepper's S3 source, `scan:`); osbatch starts a job on each object's S3
Object Created event, for the objects of its stack's input bucket under `source.prefix` that end in
`source.suffix`. OSI writes through Data Prepper's `opensearch` sink; osbatch bulk-loads each job's output
into `sink.index` of `sink.opensearch.endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cli.osi_notes import Notes, join

INPUT_BUCKET_REASON = (
    "osbatch reads uploads from its stack's input bucket (stack output InputBucket); upload there under "
    "source.prefix, or copy: aws s3 sync s3://{bucket}/{prefix} s3://<InputBucket>/{prefix}"
)
OUTPUT_SCAN_REASON = (
    "the scan of the batch jobs' output (OSI's bulk ingestion step): osbatch ingests each job's output "
    "itself when the job ends"
)
ANOTHER_INPUT_REASON = (
    "osbatch triggers a pipeline on one prefix of its input bucket; import it again with another --name for "
    "this bucket"
)
SOURCE_REASONS = {
    "scan.scheduling": "osbatch starts a job on each object's S3 Object Created event, not on a "
    "scan schedule",
    "aws": "osbatch runs in its stack's region with its stack's roles",
    "default_bucket_owner": "osbatch reads its stack's own input bucket",
    "acknowledgments": "osbatch accounts for every record in the job table (records_in = indexed + "
    "dead_lettered) instead of end-to-end acknowledgments",
    "workers": "osbatch's parallelism is inference.max_jobs_in_flight and its ingest functions'",
    "delete_s3_objects_on_read": "osbatch never deletes its input objects",
}
SINK_REASONS = {
    "aws": "osbatch writes with its stack's roles, in its stack's region",
    "routes": "osbatch indexes every record of a job; a record a field_map path is missing from is "
    "dead-lettered with the reason, where OSI's route would drop it",
}


@dataclass
class SourceSink:
    source: dict[str, Any] = field(default_factory=dict)
    sink: dict[str, Any] = field(default_factory=dict)
    endpoint: str | None = None
    id_path: str | None = None


def map_source(source: Any, where: str, notes: Notes) -> dict[str, Any]:
    """osbatch's `source:` from OSI's S3 scan: the prefix of the bucket the batch input comes from."""
    s3 = source.get("s3") if isinstance(source, dict) else None
    if not isinstance(s3, dict):
        if source is not None:
            notes.skip(where, "osbatch's input is S3 objects uploaded to its stack's input bucket")
        return {}
    base = f"{where}.s3"
    result = _scan_buckets(s3, base, notes)
    for key, reason in SOURCE_REASONS.items():
        if _get(s3, key) is not None:
            notes.skip(f"{base}.{key}", reason)
    codec = s3.get("codec")
    for name in codec if isinstance(codec, dict) else ():
        if name in ("ndjson", "newline"):
            notes.map(f"{base}.codec.{name}", "source.format", "JSON Lines, one record a line")
            result["format"] = "jsonl"
        else:
            notes.skip(f"{base}.codec.{name}", "osbatch reads JSON Lines only; convert the objects to JSONL")
    compression = s3.get("compression")
    if compression == "none":
        notes.map(f"{base}.compression", "source", "osbatch reads uncompressed objects")
    elif compression is not None:
        notes.skip(f"{base}.compression", "osbatch reads uncompressed objects only")
    return result


def _scan_buckets(s3: dict[str, Any], base: str, notes: Notes) -> dict[str, Any]:
    """The batch input is the first metadata_only bucket (Data Prepper, "ML inference processor", Behavior),
    else the first bucket; the others are named."""
    buckets = [entry.get("bucket", {}) for entry in (s3.get("scan") or {}).get("buckets") or []]
    metadata_only = [i for i, bucket in enumerate(buckets) if bucket.get("data_selection") == "metadata_only"]
    chosen = metadata_only[0] if metadata_only else 0
    result: dict[str, Any] = {}
    for index, bucket in enumerate(buckets):
        path = f"{base}.scan.buckets[{index}].bucket"
        if index == chosen:
            result = _input_bucket(bucket, path, notes)
        elif bucket.get("data_selection") == "data_only":
            notes.skip(path, OUTPUT_SCAN_REASON)
        else:
            notes.skip(path, ANOTHER_INPUT_REASON)
    return result


def _get(values: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        values = values.get(key) if isinstance(values, dict) else None  # type: ignore[assignment]
    return values


def _input_bucket(bucket: dict[str, Any], path: str, notes: Notes) -> dict[str, Any]:
    result: dict[str, Any] = {}
    prefixes = (bucket.get("filter") or {}).get("include_prefix") or []
    if prefixes:
        result["prefix"] = prefixes[0]
        notes.map(f"{path}.filter.include_prefix[0]", "source.prefix")
    for index in range(1, len(prefixes)):
        notes.skip(
            f"{path}.filter.include_prefix[{index}]",
            "osbatch's trigger rule matches one prefix a pipeline; import it again with another --name",
        )
    if "name" in bucket:
        notes.skip(
            f"{path}.name",
            INPUT_BUCKET_REASON.format(bucket=bucket["name"], prefix=result.get("prefix", "")),
        )
    if "data_selection" in bucket:
        notes.map(f"{path}.data_selection", "source", "osbatch reads each object's lines itself (Prepare)")
    for index, suffix in enumerate((bucket.get("filter") or {}).get("exclude_suffix") or []):
        notes.skip(
            f"{path}.filter.exclude_suffix[{index}]",
            f"osbatch starts jobs only for objects ending in source.suffix, so '{suffix}' objects are "
            "not read",
        )
    return result


def map_sink(sinks: Any, where: str, notes: Notes) -> SourceSink:
    """osbatch's `sink:` from the first `opensearch` sink; other sinks are named as not mapped."""
    result = SourceSink()
    found = False
    for index, entry in enumerate(sinks if isinstance(sinks, list) else []):
        path = f"{where}[{index}]"
        opensearch = entry.get("opensearch") if isinstance(entry, dict) else None
        if opensearch is None or found:
            notes.skip(path, "osbatch writes to one OpenSearch index a pipeline")
            continue
        found = True
        _opensearch_sink(opensearch, f"{path}.opensearch", result, notes)
    return result


def _opensearch_sink(sink: dict[str, Any], path: str, result: SourceSink, notes: Notes) -> None:
    hosts = sink.get("hosts") or []
    if hosts:
        result.endpoint = hosts[0]
        notes.map(f"{path}.hosts[0]", "sink.opensearch.endpoint")
    for index in range(1, len(hosts)):
        notes.skip(f"{path}.hosts[{index}]", "osbatch writes through one endpoint, the domain's")
    if "index" in sink:
        result.sink["index"] = sink["index"]
        notes.map(f"{path}.index", "sink.index")
    if sink.get("index_type", "custom") == "custom":
        if "index_type" in sink:
            notes.map(f"{path}.index_type", "sink.index", "a custom index, as osbatch's")
    else:
        notes.skip(f"{path}.index_type", "osbatch writes to a custom index (sink.index)")
    serverless = _get(sink, "aws.serverless")
    if serverless is not None:
        if serverless:
            notes.skip(
                f"{path}.aws.serverless", "osbatch writes to an OpenSearch Service domain, not a collection"
            )
        else:
            notes.map(f"{path}.aws.serverless", "sink.opensearch.endpoint", "an OpenSearch Service domain")
    for key in ("region", "sts_role_arn"):
        if _get(sink, f"aws.{key}") is not None:
            notes.skip(f"{path}.aws.{key}", SINK_REASONS["aws"])
    if "routes" in sink:
        notes.skip(f"{path}.routes", SINK_REASONS["routes"])
    for key in ("document_id", "document_id_field"):
        if key in sink:
            pointer = str(sink[key]).removeprefix("${").removesuffix("}")
            result.id_path = pointer_to_jsonpath(pointer)
            notes.map(join(path, key), "source.id_path")


def pointer_to_jsonpath(pointer: str) -> str:
    """Data Prepper's JSON Pointer key (`/a/b`) as a JSONPath (`$.a.b`); odd names in brackets."""
    parts = [part for part in pointer.strip().split("/") if part]
    return "$" + "".join(f".{part}" if part.replace("_", "").isalnum() else f"['{part}']" for part in parts)
