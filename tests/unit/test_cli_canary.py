"""The demo's canary: new content (so a new job) on every run, and a named cause when no job appears."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.canary import (
    CANARY_ID_PREFIX,
    Canary,
    TriggerBroken,
    await_canary_job,
    canary_body,
    canary_records,
    upload_canary,
)
from cli.commands import exit_code_for
from cli.exit_codes import ExitCode
from infra.pipelines import load_pipelines
from osbatch.config import parse_pipeline
from osbatch.models import job_id_for
from tests.unit.helpers import REPO, pipeline_dict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_each_upload_has_new_content_so_a_new_job(s3: Any) -> None:
    # Given the pipeline the demo uploads to
    config = parse_pipeline(pipeline_dict())
    # When the canary is uploaded on two runs, a moment apart
    first = upload_canary(s3, "osb-in", config, now=lambda: 1_000.0)
    second = upload_canary(s3, "osb-in", config, now=lambda: 1_000.5)
    # Then both go to one key under the pipeline's prefix, each with the job id of its own content
    assert first.key == second.key == "input/msmarco/osbatch-canary.jsonl"
    assert first.job_id != second.job_id
    etag = s3.head_object(Bucket="osb-in", Key=second.key)["ETag"].strip('"')
    assert second.job_id == job_id_for("msmarco", "osb-in", second.key, etag)


def test_records_carry_ids_and_text_where_the_pipeline_reads_them() -> None:
    # Given a pipeline reading nested fields
    config = parse_pipeline(
        pipeline_dict(source={"prefix": "input/msmarco/", "id_path": "$.doc.id", "text_path": "$.doc.body"})
    )
    # When the canary's lines are made
    lines = [json.loads(line) for line in canary_body(config, 2, "T").decode().splitlines()]
    # Then each has its fixed id and a text at those paths
    assert [line["doc"]["id"] for line in lines] == [f"{CANARY_ID_PREFIX}0", f"{CANARY_ID_PREFIX}1"]
    assert all("T" in line["doc"]["body"] for line in lines)


def test_bedrock_gets_its_minimum_records_per_job_and_the_others_one() -> None:
    # Given the demo's pipelines of every backend
    configs = {
        config.name: config
        for pattern in ("pipelines/*.yaml", "pipelines/examples/python-docs-*.yaml")
        for config in load_pipelines(pattern, REPO)
    }
    # Then a Bedrock canary is as large as a batch job must be, and the others hold one record
    bedrock = configs["python-docs-bedrock"]
    assert bedrock.inference.bedrock is not None
    assert canary_records(bedrock) == bedrock.inference.bedrock.quotas.min_records_per_job == 100
    assert canary_records(configs["python-docs"]) == canary_records(configs["python-docs-openai"]) == 1


def test_a_job_that_appears_is_returned() -> None:
    canary = Canary("input/msmarco/osbatch-canary.jsonl", "msmarco-abc", 1)
    clock = Clock()
    seen = iter([None, None, {"job_id": "msmarco-abc", "state": "CREATED"}])
    # When the job appears on the third look
    job = await_canary_job(canary, lambda _: next(seen), lambda _: [], sleep=clock.sleep, clock=clock)
    # Then it is returned before the timeout
    assert job["job_id"] == "msmarco-abc"
    assert clock.now < 90


def test_no_job_names_the_cause_and_exits_no_job() -> None:
    # Given a canary whose job never appears, and a trigger whose rule is missing
    canary = Canary("input/msmarco/osbatch-canary.jsonl", "msmarco-abc", 1)
    clock = Clock()
    checked: list[str] = []

    def diagnose(key: str) -> list[str]:
        checked.append(key)
        return ["no EventBridge rule takes `Object Created`"]

    # When the demo waits for it
    with pytest.raises(TriggerBroken) as raised:
        await_canary_job(canary, lambda _: None, diagnose, timeout=5, sleep=clock.sleep, clock=clock)
    # Then the message names the key and the cause the check found, and the CLI exits with NO_JOB
    assert checked == [canary.key]
    assert "osbatch-canary.jsonl started no job within 5s: no EventBridge rule" in str(raised.value)
    assert exit_code_for(raised.value) == ExitCode.NO_JOB
