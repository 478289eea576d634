"""Scenario g: many files uploaded at once, then every one's S3 event delivered again.

While the jobs run, a sampler lists the transform jobs InProgress at the SageMaker emulator
(ListTransformJobs, what the service itself reports), so the most remote jobs running at once is observed,
not read from the config; the emulator's own count of jobs running at once (`peaks`) is the second witness.
Then the `Object Created` event of every upload is put on the default bus again, as S3 would on a duplicate
delivery (EventBridge and SQS deliver at least once), through the rule, the submit queue and submit: no
second execution and no second transform job may start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from osbatch.contracts import remote_job_name

SAMPLE_SECONDS = 0.2
EVENTS_PER_CALL = 10  # PutEvents takes at most 10 entries


class RunningJobs:
    """Samples how many of the given transform jobs are InProgress, on a thread, until stopped."""

    def __init__(self, sagemaker: Any) -> None:
        self._sagemaker = sagemaker
        self._names: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="running-jobs", daemon=True)
        self.most = 0
        self.samples = 0

    def __enter__(self) -> RunningJobs:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, names: Iterable[str]) -> None:
        """The transform jobs to count (the uploads' remote jobs, known once they are uploaded)."""
        self._names = frozenset(names)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            running = self.in_progress()
            self.most = max(self.most, running)
            self.samples += 1

    def in_progress(self) -> int:
        pages = self._sagemaker.get_paginator("list_transform_jobs").paginate(StatusEquals="InProgress")
        return sum(
            summary["TransformJobName"] in self._names
            for page in pages
            for summary in page["TransformJobSummaries"]
        )


def first_remote_jobs(job_ids: Sequence[str]) -> list[str]:
    """Each tiny upload is one remote job: its name at the service."""
    return [remote_job_name(job_id, 0) for job_id in job_ids]


@dataclass(frozen=True)
class Started:
    executions: int  # executions of the job workflow named after these jobs
    transform_jobs: int  # transform jobs of these jobs at the service


def started(sfn: Any, state_machine: str, sagemaker: Any, job_ids: Sequence[str]) -> Started:
    wanted = set(job_ids)
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine)
    executions = sum(run["name"] in wanted for page in pages for run in page["executions"])
    names = {name for job_id in job_ids for name in (remote_job_name(job_id, 0), remote_job_name(job_id, 1))}
    pages = sagemaker.get_paginator("list_transform_jobs").paginate()
    transforms = sum(s["TransformJobName"] in names for page in pages for s in page["TransformJobSummaries"])
    return Started(executions, transforms)


def object_created(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The object's `Object Created` event as S3 puts it on the default bus (Amazon S3 User Guide,
    "EventBridge event message structure", docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    head = s3.head_object(Bucket=bucket, Key=key)
    obj: dict[str, Any] = {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"')}
    if head.get("VersionId") and head["VersionId"] != "null":
        obj["version-id"] = head["VersionId"]
    obj["sequencer"] = "00617F08299329D189"
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": "REPLAYED",
        "requester": "123456789012",
        "source-ip-address": "127.0.0.1",
        "reason": "PutObject",
    }
    return {
        "Source": "aws.s3",
        "DetailType": "Object Created",
        "Resources": [f"arn:aws:s3:::{bucket}"],
        "Detail": json.dumps(detail),
    }


def deliver_again(events: Any, entries: Sequence[dict[str, Any]]) -> int:
    """Put the events on the default bus again; how many EventBridge accepted."""
    accepted = 0
    for start in range(0, len(entries), EVENTS_PER_CALL):
        answer = events.put_events(Entries=list(entries[start : start + EVENTS_PER_CALL]))
        accepted += len(entries[start : start + EVENTS_PER_CALL]) - int(answer.get("FailedEntryCount", 0))
    return accepted
