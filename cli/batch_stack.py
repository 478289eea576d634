"""`osbatch batch-ingest request.json --stack`: the request run by the deployed stack's job workflow.

The CLI stages what the functions need in the output bucket (the body, and any local or OpenAI file, which
the functions cannot reach), then starts an execution that skips inference (osbatch.batch_ingestion.job): the
same PlanIngest, Distributed Map of ingest-chunk functions, Finalize and report as a job. S3 sources stay
where they are; the stack reads only the buckets of its context `batch_ingest_buckets`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cli.batch_ingest import BatchIngestError, input_files
from cli.batch_progress import BatchDisplay, BatchTracker, PlainBatchDisplay
from osbatch.batch_ingestion.job import StagedBatch, StagedFile, batch_job_id
from osbatch.batch_ingestion.request import BatchIngestRequest
from osbatch.batch_ingestion.run import BatchReport, InputFile
from osbatch.config import PipelineConfig
from osbatch.contracts import batch_files_prefix, batch_request_key, dead_letter_prefix
from osbatch.dal import JobTable
from osbatch.models import BatchIngest, JobState, SourceObject

POLL_SECONDS = 2.0
HASH_BYTES = 1024 * 1024


def pipeline_for(
    request: BatchIngestRequest, configs: list[PipelineConfig], name: str | None
) -> PipelineConfig:
    """The pipeline the request runs under: named, or the one whose index the request names."""
    matching = [c for c in configs if (c.name == name if name else c.sink.index == request.index_name)]
    if not matching:
        raise BatchIngestError(
            f"no pipeline {'named ' + repr(name) if name else 'writes index ' + repr(request.index_name)}: "
            "on the stack, a request runs under the pipeline whose sink.index it names (the functions may "
            "write only to the pipelines' indices)"
        )
    return matching[0]


def run_on_stack(
    body: dict[str, Any],
    request: BatchIngestRequest,
    config: PipelineConfig,
    *,
    outputs: dict[str, str],
    s3: Any,
    stepfunctions: Any,
    jobs: JobTable,
    scratch: Path,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    display: BatchDisplay | None = None,
) -> BatchReport:
    """display: how progress is shown (cli/batch_progress.py); by default a line per change through `say`."""
    shown = display or PlainBatchDisplay(say)
    output_bucket = outputs["OutputBucketName"]
    scratch.mkdir(parents=True, exist_ok=True)  # downloaded OpenAI files wait here to be staged
    _, files = input_files(request, s3, scratch)
    identities = [(f.cited, f.size, _version(f, s3)) for f in files]
    job_id = batch_job_id(config.name, body, identities)
    staged = [
        _stage(file, number, identity[2], s3, output_bucket, job_id)
        for number, (file, identity) in enumerate(zip(files, identities, strict=True))
    ]
    key = batch_request_key(job_id)
    s3.put_object(
        Bucket=output_bucket, Key=key, Body=StagedBatch(request=body, files=staged).model_dump_json()
    )
    state = JobState(
        job_id=job_id,
        pipeline=config.name,
        source=SourceObject(bucket=output_bucket, key=key),
        batch=BatchIngest(request=key, files=len(staged)),
    )
    size = sum(f.size for f in staged)
    # The functions read the files on the stack: progress is the chunks reported of those planned.
    tracker = BatchTracker(job_id, None)
    header = (
        f"{job_id}: {len(staged)} file(s), {size} bytes, into {request.index_name} (pipeline {config.name})"
    )
    shown.start(header, tracker)
    execution = _start(stepfunctions, outputs["StateMachineArn"], job_id, json.dumps(state.dump()), say)
    status = _follow(stepfunctions, execution, jobs, job_id, tracker, shown, sleep)
    job = jobs.get(job_id) or {}
    letters = f"s3://{outputs['DeadLetterBucketName']}/{dead_letter_prefix(job_id)}"
    report = BatchReport(
        job_id,
        request.index_name,
        len(staged),
        chunks=int(job.get("chunks", 0)),
        records_in=int(job.get("records_in", 0)),
        indexed=int(job.get("indexed", 0)),
        dead_lettered=int(job.get("dead_lettered", 0)),
        dead_letters=letters,
    )
    if status != "SUCCEEDED":
        raise BatchIngestError(
            f"{job_id}: the execution ended {status} ({job.get('state')}: {job.get('reason')}); "
            f"indexed {report.indexed} of {report.records_in}, dead letters in {letters}"
        )
    shown.end(
        report,
        f"done: {report.records_in} records in, {report.indexed} indexed, "
        f"{report.dead_lettered} dead-lettered ({job.get('state')})"
        + (f"; dead letters in {letters}" if report.dead_lettered else ""),
    )
    return report


def _version(file: InputFile, s3: Any) -> str:
    if file.bucket:  # an S3 source: its ETag names the object version
        return str(s3.head_object(Bucket=file.bucket, Key=file.key)["ETag"]).strip('"')
    digest = hashlib.sha256()
    with Path(file.key).open("rb") as handle:
        while piece := handle.read(HASH_BYTES):
            digest.update(piece)
    return f"sha256:{digest.hexdigest()}"


def _stage(file: InputFile, number: int, version: str, s3: Any, bucket: str, job_id: str) -> StagedFile:
    """S3 sources are read in place; a local or downloaded file goes to the output bucket, where the
    functions can read it."""
    if file.bucket:
        return StagedFile(bucket=file.bucket, key=file.key, size=file.size, cited=file.cited, version=version)
    key = f"{batch_files_prefix(job_id)}{number:05d}.jsonl"
    s3.upload_file(file.key, bucket, key)
    return StagedFile(bucket=bucket, key=key, size=file.size, cited=file.cited, version=version)


def _start(stepfunctions: Any, machine: str, job_id: str, payload: str, say: Callable[[str], None]) -> str:
    """The execution is named after the job: a re-run of the same request finds the one that ran."""
    try:
        return str(
            stepfunctions.start_execution(stateMachineArn=machine, name=job_id, input=payload)["executionArn"]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
    say(f"{job_id}: this request already ran on these files; showing that run")
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{job_id}"


def _follow(
    stepfunctions: Any,
    execution: str,
    jobs: JobTable,
    job_id: str,
    tracker: BatchTracker,
    display: BatchDisplay,
    sleep: Callable[[float], None],
) -> str:
    """Show the chunks' progress from the job table whenever it changes; the execution's final status."""
    shown = None
    while True:
        status = str(stepfunctions.describe_execution(executionArn=execution)["status"])
        job = jobs.get(job_id) or {}
        planned = int(job.get("chunks", 0))
        tally = jobs.chunk_totals(job_id, planned)
        progress = (len(tally.reported), planned, tally.counts)
        if progress != shown and planned:
            counts = tally.counts
            tracker.chunks = planned
            so_far = BatchReport(
                job_id, "", 0, chunks=len(tally.reported), records_in=counts.lines, indexed=counts.indexed,
                dead_lettered=counts.dead_lettered,
            )  # fmt: skip
            display.chunk(
                tracker.snapshot(so_far),
                f"  {len(tally.reported)} of {planned} chunks: {counts.lines} records, {counts.indexed} "
                f"indexed, {counts.dead_lettered} dead-lettered",
            )
            shown = progress
        if status != "RUNNING":
            return status
        sleep(POLL_SECONDS)
