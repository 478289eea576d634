"""Incremental re-embedding: what a re-upload with 1% of its records changed costs against the first upload.

    .venv/bin/python bench/incremental.py [--quick]      # needs the local runtime (run under its lock)

On the local runtime (the test pipelines' stack; pipeline e2e: SageMaker Batch Transform emulator on the
local all-MiniLM-L6-v2, the real OpenSearch node), in one run:
1. Full: N records (the demo sample's texts, cycled, each made unique and given its own id; 20,000, or
   4,000 with --quick) uploaded into an empty index. The model inputs are the emulator's own count (its
   model input log, local/emulators/batching.py), the wall time the job's, created to finished.
2. Re-upload: the same key again with every 100th record's text edited (1%). The same two figures.
   Correct when the job completed with indexed = the edited records, unchanged = the rest, and the
   emulator saw exactly the edited texts.
3. The fingerprint check's cost: Prepare's check (osbatch.incremental.check.FingerprintCheck: _mget of the
   fingerprints) over the N records against the node, per record, against the inference it saves per
   record: the same texts embedded by the local model in this process (the cheapest inference there is: a
   service's costs more). Printed beside it, not a target: the check with the partial update of each
   unchanged document (a no-op for OpenSearch when its fields did not change either).

Targets: model inputs sent <= 2% of the full upload's; the re-upload's wall time below the full upload's;
the check <= 0.1x the inference it saves, per record.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from bench.machine import cpu_summary  # noqa: E402
from local.aws import session  # noqa: E402
from local.deploy import deploy_local, load_pipelines  # noqa: E402
from local.emulators.faults import FAULTS_PATH  # noqa: E402
from local.runtime import AWS_URL, local_runtime  # noqa: E402
from osbatch.dal import JobTable  # noqa: E402
from osbatch.models import JobStateName, job_id_for  # noqa: E402
from osbatch.search.client import opensearch_client  # noqa: E402

PIPELINES = str(ROOT / "tests" / "integration" / "pipelines" / "*.yaml")  # the stack the tests deploy
PIPELINE = "e2e"
SAMPLE = ROOT / "samples" / "python-docs" / "part-1.jsonl"
EDIT_EVERY = 100  # 1%
INPUTS_TARGET = 0.02
WALL_TARGET = 1.0
CHECK_TARGET = 0.1
EMBED_SAMPLE = 2000  # texts the local model embeds for the per-record inference figure


def texts() -> list[str]:
    found = []
    for line in SAMPLE.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            found.append(record["text"])
    return found


def records(count: int) -> list[dict[str, Any]]:
    return [
        {"_id": f"inc-{number}", "text": f"{text} (entry {number})"}
        for number, text in zip(range(count), itertools.cycle(texts()), strict=False)
    ]


def model_log(method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(f"{AWS_URL}{FAULTS_PATH}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def run_job(
    stack: Any, jobs: JobTable, key: str, body: list[dict[str, Any]]
) -> tuple[dict[str, Any], int, list[str]]:
    """Upload, wait for the end; (the job item, model inputs the emulator saw, their texts)."""
    model_log("DELETE")
    s3 = session().client("s3", endpoint_url=AWS_URL)
    bucket = stack.outputs["InputBucketName"]
    data = b"".join(json.dumps(record).encode() + b"\n" for record in body)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
    job_id = job_id_for(PIPELINE, bucket, key, etag)
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job and JobStateName(job["state"]).terminal:
            seen = model_log()
            return job, int(seen["model_inputs"]), list(seen["model_input_log"])
        time.sleep(1)
    raise SystemExit(f"job {job_id} did not end within an hour")


def wall_seconds(job: dict[str, Any]) -> float:
    actual = json.loads(job["actual"])
    return float(actual["wall_seconds"])


def check_cost(client: Any, config: Any, body: list[dict[str, Any]], *, update: bool) -> float:
    """Seconds per record of Prepare's fingerprint check over `body`, every record unchanged; with `update`
    its partial update of each unchanged document too (a no-op for OpenSearch where nothing changed)."""
    from osbatch.incremental.check import FingerprintCheck

    class LookupOnly(FingerprintCheck):
        def _keep(self, doc_id: str, record: dict[str, Any], line: int, text: str) -> None:
            self.counts.unchanged += 1

    sent: list[int] = []
    check = (FingerprintCheck if update else LookupOnly)(
        client,
        config,
        result_key="SageMakerOutput",
        job_id="bench-check",
        source_uri="s3://bench/check.jsonl",
        send=lambda _record, line, _text, _fields: sent.append(line),
        dead_letter=lambda line, _record, reason: sent.append(line),
    )
    started = time.perf_counter()
    for line, record in enumerate(body, start=1):
        check.offer(record["_id"], record, line, record["text"])
    counts = check.close()
    elapsed = time.perf_counter() - started
    if sent or counts.unchanged != len(body):
        raise SystemExit(f"the check found {len(sent)} of {len(body)} unchanged records changed: {counts}")
    return elapsed / len(body)


def inference_cost(body: list[dict[str, Any]]) -> float:
    """Seconds per record the local model takes to embed these texts (batches of 128, as the emulator)."""
    from local.model.cache import load_embedder

    embedder = load_embedder()
    sample = [record["text"] for record in body[:EMBED_SAMPLE]]
    embedder.embed(sample[:16])  # warm
    started = time.perf_counter()
    for start in range(0, len(sample), 128):
        embedder.embed(sample[start : start + 128])
    return (time.perf_counter() - started) / len(sample)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 records instead of 20,000")
    args = parser.parse_args()
    count = 4000 if args.quick else 20000
    runtime = local_runtime()
    runtime.up(progress=lambda _: None)
    config = {c.name: c for c in load_pipelines(PIPELINES)}[PIPELINE]
    client = opensearch_client(runtime.opensearch.url)
    client.indices.delete(index=config.sink.index, ignore_unavailable=True)
    stack = deploy_local(PIPELINES, opensearch_url=runtime.opensearch.url, progress=lambda _: None)
    jobs = JobTable(session().resource("dynamodb", endpoint_url=AWS_URL).Table(stack.outputs["JobTableName"]))
    print(f"cpu: {cpu_summary()}")
    key = f"{config.source.prefix}bench-incremental-{time.time_ns()}.jsonl"
    first = records(count)
    full, full_inputs, _ = run_job(stack, jobs, key, first)
    second = [dict(record) for record in first]
    edited = set()
    for index in range(0, count, EDIT_EVERY):
        second[index]["text"] += " (revised)"
        edited.add(second[index]["text"])
    again, inputs, log = run_job(stack, jobs, key, second)
    correct = (
        full["state"] == again["state"] == "COMPLETED"
        and int(full["indexed"]) == count
        and (int(again["indexed"]), int(again["unchanged"])) == (len(edited), count - len(edited))
        and set(log) == edited
    )
    print(
        f"  full: {count:,} records, {full_inputs:,} model inputs, {wall_seconds(full):.1f} s; "
        f"re-upload: {inputs:,} model inputs, {wall_seconds(again):.1f} s, indexed {again['indexed']}, "
        f"unchanged {again['unchanged']}; correct: {correct}"
    )
    client.indices.refresh(index=config.sink.index)
    per_check = check_cost(client, config, second, update=False)
    per_update = check_cost(client, config, second, update=True)
    per_inference = inference_cost(second)
    print(
        f"  fingerprint check: {per_check * 1e6:.0f} us per record (_mget of 1,000 ids a request); with "
        f"the partial update of each unchanged document (no-op where nothing changed): "
        f"{per_update * 1e6:.0f} us; local MiniLM inference: {per_inference * 1e6:.0f} us per record"
    )
    share = inputs / full_inputs if full_inputs else float("inf")
    wall = wall_seconds(again) / wall_seconds(full)
    check = per_check / per_inference
    results = [
        (
            f"re-upload with 1% changed: model inputs sent = {share:.1%} of full",
            f"<= {INPUTS_TARGET:.0%}",
            share <= INPUTS_TARGET,
        ),
        (
            f"re-upload with 1% changed: wall time = {wall:.2f}x full's",
            f"< {WALL_TARGET:g}x",
            wall < WALL_TARGET,
        ),
        (
            f"fingerprint check cost = {check:.3f}x the inference it saves, per record",
            f"<= {CHECK_TARGET:g}x",
            check <= CHECK_TARGET,
        ),
    ]
    failed = False
    for line, target, ok in results:
        verdict = "PASS" if ok and correct else "FAIL"
        failed |= verdict == "FAIL"
        print(f"{line} (target {target}): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
