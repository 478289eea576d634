"""Delay from a remote job's completion to the first `_bulk` request the node receives, on the local runtime.

For SageMaker and Bedrock (pipelines e2e-wake and e2e-wake-bedrock: a poll interval of an hour, 36 s on the
emulator's clock at OSBATCH_TIME_SCALE 0.01), each run uploads 100 records and measures
- completion: the emulator's end time of the remote job (DescribeTransformJob TransformEndTime,
  GetModelInvocationJob endTime);
- first bulk: the node's own timestamp of the first document it indexed for the job, from its indexing
  slowlog (threshold 0 ms, enabled for these indices by an index template the bench removes after);
with (a) the event path (the wake rules deployed) and (b) polling only (the wake rules disabled), the
baseline, in the same run. The runtime's processes must use this worktree's ports (OSBATCH_* variables).

    OSBATCH_HOME=... OSBATCH_AWS_PORT=... OSBATCH_OPENSEARCH_PORT=... \
        .venv/bin/python bench/completion_delay.py [--runs 3] [--quick]

It starts the local runtime if it is not running (and leaves it running). --quick: one run per backend
and path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from bench.machine import cpu_summary  # noqa: E402
from local.aws import session  # noqa: E402
from local.deploy import deploy_local, load_pipelines  # noqa: E402
from local.paths import logs_dir  # noqa: E402
from local.runtime import AWS_URL, local_runtime  # noqa: E402
from local.workflow_history import execution_arn, poll_history, wake_rules_disabled  # noqa: E402
from osbatch.dal import JobTable  # noqa: E402
from osbatch.models import JobStateName, job_id_for  # noqa: E402
from osbatch.search.client import opensearch_client  # noqa: E402

PIPELINES = str(ROOT / "tests" / "integration" / "pipelines" / "*.yaml")  # the stack the tests deploy
BACKENDS = {"sagemaker": "e2e-wake", "bedrock": "e2e-wake-bedrock"}
RECORDS = 100  # Bedrock's minimum per job
TEMPLATE = "osbatch-bench-slowlog"
# "Within seconds" on the event path; and at least this many times sooner than polling.
EVENT_TARGET_SECONDS = 5.0
SPEEDUP_TARGET = 5.0


@dataclass(frozen=True)
class Run:
    delay: float  # seconds from remote completion to the first indexed document
    polls: int
    woken: int


def slowlog_path() -> Path:
    return logs_dir() / "opensearch" / "osbatch-local_index_indexing_slowlog.json"


def first_indexed(index: str, doc_prefix: str, offset: int) -> dt.datetime | None:
    """The node's timestamp of the first document of this run, from the slowlog lines after `offset`."""
    with slowlog_path().open("rb") as log:
        log.seek(offset)
        for raw in log:
            line = json.loads(raw)
            # {"timestamp": "2026-12-01T12:26:22,339+0000", "message": "[<index>/<uuid>]", "id": "<doc>", ...}
            ours = str(line.get("id", "")).startswith(doc_prefix)
            if ours and str(line.get("message", "")).startswith(f"[{index}/"):
                return dt.datetime.strptime(str(line["timestamp"]), "%Y-%m-%dT%H:%M:%S,%f%z")
    return None


def remote_end(job: dict[str, Any]) -> dt.datetime:
    """When the last of the job's remote jobs ended: the completion that lets ingest start."""
    sagemaker = session().client("sagemaker", endpoint_url=AWS_URL)
    bedrock = session().client("bedrock", endpoint_url=AWS_URL)
    ends = []
    for remote in job["remote_jobs"]:  # {"id", "arn", "output_uri"} per remote job (steps/start_job.py)
        if ":transform-job/" in remote["arn"]:
            end: dt.datetime = sagemaker.describe_transform_job(TransformJobName=remote["id"])[
                "TransformEndTime"
            ]
        else:
            end = bedrock.get_model_invocation_job(jobIdentifier=remote["arn"])["endTime"]
        ends.append(end if end.tzinfo else end.replace(tzinfo=dt.UTC))
    return max(ends)


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


def one_run(stack: Any, jobs: JobTable, pipeline: str, tag: str) -> Run:
    config = {c.name: c for c in load_pipelines(PIPELINES)}[pipeline]
    offset = slowlog_path().stat().st_size if slowlog_path().exists() else 0
    prefix = f"{tag}-{time.time_ns()}"
    body = b"".join(
        json.dumps({"_id": f"{prefix}-{n}", "text": f"Passage {n}."}).encode() + b"\n" for n in range(RECORDS)
    )
    s3 = session().client("s3", endpoint_url=AWS_URL)
    key = f"{config.source.prefix}{prefix}.jsonl"
    s3.put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=body)
    etag = s3.head_object(Bucket=stack.outputs["InputBucketName"], Key=key)["ETag"].strip('"')
    job_id = job_id_for(config.name, stack.outputs["InputBucketName"], key, etag)

    def ended() -> dict[str, Any] | None:
        job = jobs.get(job_id)
        return job if job and JobStateName(job["state"]).terminal else None

    job = wait_for(ended, f"end of job {job_id}")
    if job["state"] != "COMPLETED":
        raise RuntimeError(f"job {job_id} ended {job['state']}: {job.get('reason')}")
    indexed = wait_for(lambda: first_indexed(config.sink.index, prefix, offset), "slowlog line", timeout=30)
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    history = poll_history(sfn, execution_arn(stack.outputs["StateMachineArn"], job_id))
    return Run((indexed - remote_end(job)).total_seconds(), history.polls, history.woken)


def describe(runs: list[Run]) -> str:
    delays = [run.delay for run in runs]
    spread = f" ({min(delays):.1f}-{max(delays):.1f})" if len(runs) > 1 else ""
    return f"{statistics.median(delays):.1f} s{spread}, polls {[run.polls for run in runs]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="jobs per backend and path (default 3)")
    parser.add_argument("--quick", action="store_true", help="one job per backend and path")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    runtime = local_runtime()
    runtime.up(progress=lambda _: None)
    client = opensearch_client(runtime.opensearch.url)
    indices = [c.sink.index for c in load_pipelines(PIPELINES) if c.name in BACKENDS.values()]
    client.indices.put_index_template(
        name=TEMPLATE,
        body={
            "index_patterns": indices,
            "template": {
                "settings": {
                    "index.indexing.slowlog.threshold.index.trace": "0ms",
                    "index.indexing.slowlog.source": "0",
                }
            },
        },
    )
    for index in indices:  # created afresh by Prepare, with the template's settings
        client.indices.delete(index=index, ignore_unavailable=True)
    stack = deploy_local(PIPELINES, opensearch_url=runtime.opensearch.url, progress=lambda _: None)
    jobs = JobTable(session().resource("dynamodb", endpoint_url=AWS_URL).Table(stack.outputs["JobTableName"]))
    events = session().client("events", endpoint_url=AWS_URL)
    print(f"cpu: {cpu_summary()}")
    print(f"{RECORDS} records per job, poll interval 3600 s (36 s on the emulator's clock), {runs} runs each")
    failed = False
    try:
        for backend, pipeline in BACKENDS.items():
            one_run(stack, jobs, pipeline, f"{backend}-warm")  # first invocations start the sandboxes
            woken = [one_run(stack, jobs, pipeline, f"{backend}-event") for _ in range(runs)]
            with wake_rules_disabled(events):
                polled = [one_run(stack, jobs, pipeline, f"{backend}-poll") for _ in range(runs)]
            event_delay = statistics.median(run.delay for run in woken)
            poll_delay = statistics.median(run.delay for run in polled)
            speedup = poll_delay / event_delay if event_delay > 0 else float("inf")
            ok_delay = event_delay < EVENT_TARGET_SECONDS and all(run.woken == 1 for run in woken)
            ok_speedup = speedup > SPEEDUP_TARGET
            failed |= not (ok_delay and ok_speedup)
            print(f"{backend} polling only (baseline): {describe(polled)}")
            verdict = "PASS" if ok_delay else "FAIL"
            print(f"{backend} event path: {describe(woken)} (target < {EVENT_TARGET_SECONDS:g} s): {verdict}")
            verdict = "PASS" if ok_speedup else "FAIL"
            print(
                f"{backend} event path vs polling: {speedup:.1f}x sooner "
                f"(target > {SPEEDUP_TARGET:g}x): {verdict}"
            )
    finally:
        client.indices.delete_index_template(name=TEMPLATE)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
