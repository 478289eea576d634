"""What `osbatch report <job>` shows, read from the stack: the job item and its report, the dead letters
grouped by stage and reason, the workflow's state timings, the remote jobs and the ingest chunks' finish
times. Every read goes through the target's clients; nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from osbatch.contracts import dead_letter_prefix, job_parts_key, report_key

SAMPLES_PER_REASON = 3
REASON_CHARS = 160  # a reason's first characters group it: the rest is often the record's own detail


@dataclass(frozen=True)
class DeadLetterGroup:
    stage: str
    reason: str
    count: int
    samples: list[str]


@dataclass(frozen=True)
class Span:
    """One stretch of the job's timeline, in seconds from the job's creation."""

    name: str
    start: float
    end: float


@dataclass
class ReportData:
    job: dict[str, Any]
    report: dict[str, Any] | None
    dead_letters: list[DeadLetterGroup] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    chunks: list[tuple[float, int]] = field(default_factory=list)  # (finished at, records indexed)
    remotes: list[dict[str, Any]] = field(default_factory=list)  # id, arn, records

    @property
    def job_id(self) -> str:
        return str(self.job["job_id"])


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds(start: datetime | None, value: Any) -> float | None:
    when = parse_time(value)
    if start is None or when is None:
        return None
    return (when - start).total_seconds()


def group_dead_letters(entries: Iterable[dict[str, Any]]) -> list[DeadLetterGroup]:
    """Dead-letter lines (ingest/dead_letter.py's entries) by stage and reason, largest group first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in entries:
        reason = str(entry.get("reason", ""))[:REASON_CHARS]
        groups.setdefault((str(entry.get("stage", "?")), reason), []).append(entry)
    found = [
        DeadLetterGroup(
            stage,
            reason,
            len(items),
            [_sample(item) for item in items[:SAMPLES_PER_REASON]],
        )
        for (stage, reason), items in groups.items()
    ]
    return sorted(found, key=lambda group: (-group.count, group.stage, group.reason))


def _sample(entry: dict[str, Any]) -> str:
    record = entry.get("record")
    text = record if isinstance(record, str) else json.dumps(record)
    where = f"line {entry['line']}" if entry.get("line") is not None else f"offset {entry.get('offset')}"
    return f"{where}: {text[:200]}"


def state_spans(events: list[dict[str, Any]], start: datetime | None) -> list[Span]:
    """Each state's entries and exits in a Step Functions execution history, as spans from `start`."""
    spans, open_states = [], {}
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        when = _seconds(start, event.get("timestamp"))
        if when is None:
            continue
        if entered:
            open_states[entered["name"]] = when
        elif exited and exited["name"] in open_states:
            spans.append(Span(exited["name"], open_states.pop(exited["name"]), when))
    return spans


def queue_wait(job: dict[str, Any]) -> Span | None:
    """Queue wait: from the upload's job record to its remote jobs' submission (Prepare, any slot wait)."""
    start = parse_time(job.get("created_at"))
    submitted = _seconds(start, job.get("submitted_at"))
    return None if submitted is None else Span("queue wait", 0.0, submitted)


def gather(target: Any, job_id: str) -> ReportData | None:
    job = target.jobs.get(job_id)
    if job is None:
        return None
    s3 = target.client("s3")
    output_bucket = target.output("OutputBucketName")
    data = ReportData(job=job, report=_json_object(s3, output_bucket, report_key(job_id)))
    start = parse_time(job.get("created_at"))
    dead_bucket = target.output("DeadLetterBucketName")
    data.dead_letters = group_dead_letters(_dead_letter_entries(s3, dead_bucket, dead_letter_prefix(job_id)))
    wait = queue_wait(job)
    data.spans = ([wait] if wait else []) + _history_spans(target, job, start)
    data.chunks = _chunk_finishes(target.jobs, job_id, start)
    parts = _json_object(s3, output_bucket, job_parts_key(job_id)) or []
    records: dict[int, int] = {}
    for part in parts:
        records[int(part["job"])] = records.get(int(part["job"]), 0) + int(part["records"])
    data.remotes = [
        {"id": ref.get("id"), "arn": ref.get("arn"), "records": records.get(index)}
        for index, ref in enumerate(job.get("remote_jobs") or [])
    ]
    return data


def _json_object(s3: Any, bucket: str, key: str) -> Any:
    from botocore.exceptions import ClientError

    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError:
        return None


def _dead_letter_entries(s3: Any, bucket: str, prefix: str) -> Iterable[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for line in body.splitlines():
                if line.strip():
                    yield json.loads(line)


def _history_spans(target: Any, job: dict[str, Any], start: datetime | None) -> list[Span]:
    from botocore.exceptions import ClientError

    arn = job.get("execution_arn")
    if not arn:
        return []
    try:
        sfn = target.client("stepfunctions")
        events = [
            event
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
            for event in page["events"]
        ]
    except ClientError:
        return []
    return state_spans(events, start)


def _chunk_finishes(jobs: Any, job_id: str, start: datetime | None) -> list[tuple[float, int]]:
    finishes = []
    for item in jobs.chunk_items(job_id):
        if "checkpoint" in item:
            continue  # still running
        when = _seconds(start, item.get("updated_at"))
        if when is not None:
            finishes.append((when, int(item.get("indexed", 0))))
    return sorted(finishes)
