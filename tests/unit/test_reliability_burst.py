"""reliability/burst.py (scenario g): the repeated S3 event is one submit reads as the same object, and the
sampler counts only the uploads' transform jobs that are InProgress."""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from osbatch.steps.submit import ObjectCreatedEvent, source_from_event
from reliability.burst import RunningJobs, object_created

REGION = "us-east-1"


def test_a_repeated_object_created_event_announces_the_object_as_it_is() -> None:
    with mock_aws():
        # Given an uploaded object
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="osb-in")
        etag = s3.put_object(Bucket="osb-in", Key="input/p/a b.jsonl", Body=b'{"_id": "1"}\n')["ETag"].strip(
            '"'
        )

        # When its event is built again as S3 puts it on the bus, and read as EventBridge delivers it
        entry = object_created(s3, "osb-in", "input/p/a b.jsonl")
        delivered = {
            "version": "0", "id": "1", "account": "123456789012", "time": "2026-12-07T00:00:00Z",
            "region": REGION, "source": entry["Source"], "detail-type": entry["DetailType"],
            "resources": entry["Resources"], "detail": json.loads(entry["Detail"]),
        }  # fmt: skip
        source = source_from_event(ObjectCreatedEvent.model_validate(delivered))

        # Then submit sees the same bucket, key, ETag and size, so the same job id
        assert (source.bucket, source.key, source.etag, source.size) == (
            "osb-in",
            "input/p/a b.jsonl",
            etag,
            13,
        )


class Listing:
    """ListTransformJobs' answer as a paginator gives it: some jobs InProgress, one of another upload."""

    def get_paginator(self, name: str) -> Any:
        assert name == "list_transform_jobs"
        jobs = [{"TransformJobName": name} for name in ("osb-a-0", "osb-b-0", "osb-other-0")]
        return type("Pages", (), {"paginate": lambda _self, **kwargs: [{"TransformJobSummaries": jobs}]})()


def test_the_sampler_counts_only_the_watched_jobs() -> None:
    # Given a sampler watching two uploads' transform jobs
    running = RunningJobs(Listing())
    running.watch(["osb-a-0", "osb-b-0"])
    # When it lists the jobs InProgress / Then the other upload's job is not counted
    assert running.in_progress() == 2
