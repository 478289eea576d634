"""The demo's proof that its trigger works on this run: a canary upload with new content, and its job.

A re-run of the demo uploads the same sample bytes, which map to the jobs of the first run (the same etag,
the same job id), so those jobs alone never show whether this run's upload started anything. The canary
object holds a timestamp, so its etag and job id are new every run: its job appears only if the bucket's
notifications, the pipeline's EventBridge rule, the submit queue and the submit function all work now.
If none appears, the trigger's hops are checked (cli.submit.TriggerCheck) and the cause is named.

Its records carry fixed ids (`CANARY_ID_PREFIX` + n), so each run overwrites the same documents, and the
demo deletes them once the job has ended: the index keeps the sample alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jsonpath_ng import parse as jsonpath

from cli.commands import NoJobStarted
from cli.submit import TriggerCheck, wait_for_job
from cli.target import Target
from osbatch.config import Backend, PipelineConfig
from osbatch.models import job_id_for

CANARY_ID_PREFIX = "osbatch-canary-"
CANARY_NAME = "osbatch-canary.jsonl"
APPEAR_TIMEOUT_SECONDS = 90.0


class TriggerBroken(NoJobStarted):
    """The canary's upload started no job; the message names the likely cause."""


@dataclass(frozen=True)
class Canary:
    key: str
    job_id: str
    records: int

    @property
    def ids(self) -> list[str]:
        return [f"{CANARY_ID_PREFIX}{n}" for n in range(self.records)]


def canary_records(config: PipelineConfig) -> int:
    """The fewest records the pipeline's backend accepts in a job: Bedrock batch inference has a minimum
    per job (config.BedrockQuotas.min_records_per_job); the others take one."""
    settings = config.inference.bedrock
    if config.inference.backend is Backend.BEDROCK and settings is not None:
        return int(settings.quotas.min_records_per_job)
    return 1


def canary_body(config: PipelineConfig, records: int, stamp: str) -> bytes:
    """JSON lines with the id and the text where the pipeline's source reads them."""
    lines = []
    for n in range(records):
        record: dict[str, Any] = {}
        jsonpath(config.source.id_path).update_or_create(record, f"{CANARY_ID_PREFIX}{n}")
        jsonpath(config.source.text_path).update_or_create(
            record, f"osbatch demo canary {n}, uploaded at {stamp} to prove the trigger"
        )
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def upload_canary(
    s3: Any, bucket: str, config: PipelineConfig, *, now: Callable[[], float] = time.time
) -> Canary:
    key = f"{config.source.prefix}{CANARY_NAME}"
    records = canary_records(config)
    stamp = datetime.fromtimestamp(now(), UTC).isoformat()
    etag = s3.put_object(Bucket=bucket, Key=key, Body=canary_body(config, records, stamp))["ETag"].strip('"')
    return Canary(key, job_id_for(config.name, bucket, key, etag), records)


def await_canary_job(
    canary: Canary,
    lookup: Callable[[str], dict[str, Any] | None],
    diagnose: Callable[[str], list[str]],
    *,
    timeout: float = APPEAR_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The canary's job once it appears; TriggerBroken naming `diagnose(key)`'s causes if it does not."""
    job = wait_for_job(lambda: lookup(canary.job_id), timeout, sleep=sleep, clock=clock)
    if job is not None:
        return job
    causes = diagnose(canary.key) or [
        "the bucket's notifications, the pipeline's rule and the submit queues look fine: the submit "
        "function may be slow or failing; see its logs"
    ]
    raise TriggerBroken(
        f"the demo's canary upload {canary.key} started no job within {timeout:g}s: {'; '.join(causes)}"
    )


def trigger_check(target: Target) -> Callable[[str], list[str]]:
    """The causes TriggerCheck finds for a key of the target's input bucket."""
    bucket = target.output("InputBucketName")
    check = TriggerCheck(
        events=target.client("events"),
        s3=target.client("s3"),
        sqs=target.client("sqs"),
        submit_queue_url=target.outputs.get("SubmitQueueUrl"),
        submit_dlq_url=target.outputs.get("SubmitDlqUrl"),
    )
    return lambda key: check.causes(bucket, key)


def delete_canary_documents(client: Any, index: str, canary: Canary) -> None:
    """Remove the canary's documents, so searches of the demo index see the sample alone."""
    client.delete_by_query(index=index, body={"query": {"ids": {"values": canary.ids}}}, refresh=True)
