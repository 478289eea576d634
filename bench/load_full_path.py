"""The full path under load: one upload of short texts to the load-text pipeline's prefix, embedded by the
local MiniLM through the SageMaker transform emulator, indexed on the node.

Stage times come from the job item (created_at: the submit function saw the upload's event; finished_at)
and the workflow's history (each state's entries and exits, cli/report_data.state_spans): Prepare, the
remote job (StartJob to the last PollJob), the ingest (PlanIngest and the Map) and Finalize.
Conservation is computed from the index and the dead letters (bench/load_accounting.py).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load_accounting import Conservation, conserve
from bench.load_data import text_lines, text_of, write_lines
from bench.load_memory import MemoryUse
from bench.load_stack import LoadStack
from cli.report_data import parse_time, state_spans
from osbatch.models import JobStateName, job_id_for

PIPELINE = "load-text"
JOB_TIMEOUT_SECONDS = 4 * 3600.0  # stops a hung run; nothing is judged by it
# The workflow's states, grouped into the stages the report names.
STAGES = {
    "Prepare": "prepare",
    "StartJob": "inference",
    "WaitForJob": "inference",
    "PollJob": "inference",
    "PlanIngest": "ingest",
    "IngestChunks": "ingest",
    "Finalize": "finalize",
}


@dataclass(frozen=True)
class FullPathRun:
    records: int
    upload_seconds: float
    seconds: float  # from the upload's end to the job's end
    stages: dict[str, tuple[float, float]]  # stage -> (first entry, last exit), seconds from the job item
    state: str
    job: dict[str, Any]
    conservation: Conservation
    memory: MemoryUse

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def describe(self) -> list[str]:
        lines = [
            f"full path, {self.records} records: job {self.state}; upload {self.upload_seconds:.1f} s, then "
            f"{self.seconds:.0f} s to the job's end: {self.rate:.0f} records/s",
        ]
        for stage, (start, end) in sorted(self.stages.items(), key=lambda item: item[1]):
            lines.append(f"  {stage:10} {end - start:7.1f} s  (from {start:6.1f} s to {end:6.1f} s)")
        lines.append(f"  osbatch's own counts: records_in {self.job.get('records_in')}, indexed "
                     f"{self.job.get('indexed')}, dead_lettered {self.job.get('dead_lettered')}")  # fmt: skip
        lines.append(f"  conservation: {self.conservation.describe()}")
        lines += [f"    {example}" for example in self.conservation.examples]
        m = self.memory
        lines.append(
            f"  ingest-chunk: {m.invocations} invocations, peak {m.peak_mb} MB of {m.configured_mb} MB"
            + (f", {m.killed} killed past their memory size" if m.killed else "")
        )
        return lines


def stage_spans(history: list[dict[str, Any]], created: Any) -> dict[str, tuple[float, float]]:
    start = parse_time(created)
    found: dict[str, list[float]] = defaultdict(list)
    for span in state_spans(history, start):
        stage = STAGES.get(span.name)
        if stage:
            found[stage] += [span.start, span.end]
    return {stage: (min(times), max(times)) for stage, times in found.items()}


def run_full_path(load: LoadStack, records: int, work: Path, say: Any = print) -> FullPathRun:
    config = load.configs[PIPELINE]
    path = work / f"texts-{records}.jsonl"
    size = write_lines(path, text_lines(records))
    say(f"full path: {records} texts, {size / 2**20:.1f} MiB, into {config.sink.index}")
    load.fresh_index(config.sink.index)
    memory = load.ingest_memory()
    bucket = load.stack.outputs["InputBucketName"]
    key = f"{config.source.prefix}{load.run}/texts-{records}.jsonl"
    # Uploaded as `osbatch submit` uploads (boto3's upload_file: multipart above 8 MiB); the Object Created
    # event of its CompleteMultipartUpload starts the job.
    began = time.monotonic()
    load.s3.upload_file(str(path), bucket, key)
    uploaded = time.monotonic()
    etag = load.s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    job_id = job_id_for(config.name, bucket, key, etag)
    job = wait_for_job(load, job_id, say)
    ended = time.monotonic()
    history = load.history(str(job.get("execution_arn", "")))
    letters = load.dead_letters(job_id)
    conservation = conserve(load.client, config.sink.index, records, letters, expected_text=text_of)
    return FullPathRun(
        records=records,
        upload_seconds=uploaded - began,
        seconds=ended - uploaded,
        stages=stage_spans(history, job.get("created_at")),
        state=str(job.get("state")),
        job=job,
        conservation=conservation,
        memory=memory.read(),
    )


def wait_for_job(load: LoadStack, job_id: str, say: Any) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    shown = None
    while time.monotonic() < deadline:
        job = load.jobs.get(job_id) or {}
        state = job.get("state")
        if state != shown:
            say(f"  {time.strftime('%H:%M:%S')} {job_id}: {state}")
            shown = state
        if state and JobStateName(state).terminal:
            return job
        time.sleep(2)
    raise TimeoutError(f"{job_id} did not end within {JOB_TIMEOUT_SECONDS:.0f} s")
