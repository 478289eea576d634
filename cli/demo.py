"""`osbatch demo` (`make demo`): the whole pipeline on sample data, on this machine, with no AWS account.

Start the runtime, deploy the synthesized stack into it, upload the sample, follow the jobs while they
run and ingest, print the accounting, and search the result. Re-running it is safe: the same files are
the same jobs, so a second run starts nothing and shows the same numbers. `make demo BACKEND=bedrock`
(openai, ml-commons) runs the same through another backend's pipeline (local/demo_backends.py).

A local-runtime command: this module imports local/ at its top, so the CLI imports it only inside the
`demo` command (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli.canary import Canary, await_canary_job, delete_canary_documents, trigger_check, upload_canary
from cli.commands import progress_source
from cli.local_search import local_query_embedder
from cli.long_documents_demo import PIPELINE as LONG_DOCUMENTS
from cli.long_documents_demo import passages_line, search_deep_passage, upload_long_documents
from cli.output import is_terminal
from cli.search import print_hits, print_response, run_search, semantic_search
from cli.target import Target, local_target
from cli.views import table
from cli.watch import RichRenderer, watch_jobs
from local.demo_backends import DEFAULT_BACKEND, DemoBackend, demo_backend
from local.deploy import deploy_local, load_pipelines
from local.paths import REPO_ROOT
from local.runtime import local_runtime
from local.search_setup import provision_local
from osbatch.dal import JobTable
from osbatch.models import JobStateName, job_id_for
from osbatch.search.client import opensearch_client
from osbatch.search.queries import Mode

SAMPLE_DIR = REPO_ROOT / "samples" / "python-docs"
EXPECTED_DEAD_LETTERS = 5  # the sample's deliberately bad lines (samples/README.md)
QUERIES = (
    "read and write gzip compressed files",
    "parse command line options and arguments",
    "run a function in a background thread",
)
# A query where exact terms (a function name) and meaning both count.
HYBRID_QUERY = "zlib decompress bytes"
TIMEOUT_SECONDS = 900


@dataclass
class Upload:
    name: str
    job_id: str


def run_demo(backend: str = DEFAULT_BACKEND, progress: Callable[[str], None] = print) -> int:
    demo = demo_backend(backend)  # an unknown backend fails before anything starts
    started = time.monotonic()
    runtime = local_runtime()
    runtime.up(progress)
    stack = deploy_local(demo.pipelines, opensearch_url=runtime.opensearch.url, progress=progress)
    target = local_target()
    assert target is not None, f"stack {stack.stack_name} was just deployed, so the local target exists"
    configs = {config.name: config for config in load_pipelines(demo.pipelines)}
    config, long_documents = configs[demo.pipeline], configs.get(LONG_DOCUMENTS)
    progress(f"backend {backend}: the sample goes to pipeline {config.name}, index {config.sink.index}")
    client = opensearch_client(runtime.opensearch.url)
    if demo.before_upload is not None:
        demo.before_upload(client, config, progress)

    uploads = upload_sample(target, config.name, config.source.prefix, progress)
    if long_documents is not None:  # the long sample, chunked (cli/long_documents_demo.py)
        uploads.append(Upload(*upload_long_documents(target, long_documents, progress)))
    canary = upload_canary(target.client("s3"), target.output("InputBucketName"), config)
    progress(f"uploaded a canary -> {canary.key} (new content every run: its job proves this run's trigger)")
    await_canary_job(canary, target.jobs.get, trigger_check(target))
    jobs = target.jobs
    followed = [*uploads, Upload("canary", canary.job_id)]
    if is_terminal():  # bars that move during inference and ingest; plain state lines in logs
        source = progress_source(target, demo.pipelines, config.name)
        bars = watch_jobs(source, [u.job_id for u in followed], RichRenderer(), timeout=TIMEOUT_SECONDS)
        finished = {job_id: jobs.get(job_id) or {} for job_id in bars}
    else:
        finished = follow(jobs, followed, started, progress)
    ok = summarize(
        {upload.job_id: finished[upload.job_id] for upload in uploads}, uploads, time.monotonic() - started
    )
    ok = canary_verdict(finished[canary.job_id], canary) and ok
    delete_canary_documents(client, config.sink.index, canary)

    client.indices.refresh(index=config.sink.index)
    query_vector = local_query_embedder(config)
    for query in QUERIES:
        print(f'\nsearch: "{query}"')
        print_hits(semantic_search(client, config, query, k=3, query_vector=query_vector))
    search_side(client, config, demo, progress)
    if long_documents is not None:
        print(f"\n{uploads[-1].name}: {passages_line(finished[uploads[-1].job_id])}")
        ok = search_deep_passage(client, long_documents) and ok
    print(
        f"\nthe runtime is still up: `osbatch --pipelines '{demo.pipelines}' jobs`, "
        f"`osbatch --pipelines '{demo.pipelines}' search QUERY --pipeline {config.name}`, `make down`"
    )
    return 0 if ok else 1


def search_side(client: Any, config: Any, demo: DemoBackend, progress: Callable[[str], None]) -> None:
    """`osbatch setup`, then one search through a search pipeline and one hybrid search."""
    progress(f"\nsetting up the search side of {config.name} (osbatch setup)")
    for change in provision_local(client, config, progress).changes:
        progress(f"  {change.describe()}")
    query = QUERIES[0]
    print(f'\nneural search through the search pipeline {demo.rerank_pipeline}: "{query}"')
    response = run_search(client, config, query, k=3, mode=Mode.NEURAL, search_pipeline=demo.rerank_pipeline)
    print_response(response, config, as_json=False)
    print(f'\nhybrid search (BM25 + k-NN, min-max normalized): "{HYBRID_QUERY}"')
    print_response(run_search(client, config, HYBRID_QUERY, k=3, mode=Mode.HYBRID), config, as_json=False)


def upload_sample(
    target: Target, pipeline: str, prefix: str, progress: Callable[[str], None]
) -> list[Upload]:
    s3 = target.client("s3")
    bucket = target.output("InputBucketName")
    uploads = []
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        key = f"{prefix}{path.name}"
        etag = s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())["ETag"].strip('"')
        uploads.append(Upload(path.name, job_id_for(pipeline, bucket, key, etag)))
        progress(f"uploaded {path.relative_to(REPO_ROOT)} -> s3://{bucket}/{key}")
    return uploads


def follow(
    jobs: JobTable, uploads: list[Upload], started: float, progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Print each job's state changes (and ingest progress) until every job has ended."""
    seen: dict[str, str] = {}
    latest: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for upload in uploads:
            job = jobs.get(upload.job_id)
            if job is None:
                continue
            latest[upload.job_id] = job
            line = describe(jobs, job)
            if seen.get(upload.job_id) != line:
                seen[upload.job_id] = line
                progress(f"[{time.monotonic() - started:6.1f}s] {upload.name:14} {line}")
        if len(latest) == len(uploads) and all(
            JobStateName(job["state"]).terminal for job in latest.values()
        ):
            return latest
        time.sleep(0.5)
    raise TimeoutError(f"jobs did not finish within {TIMEOUT_SECONDS}s; `osbatch jobs` shows where they are")


def describe(jobs: JobTable, job: dict[str, Any]) -> str:
    state = job["state"]
    if state == JobStateName.RUNNING.value:
        remote = len(job.get("remote_jobs") or [])
        return (
            f"RUNNING  {job.get('remote_jobs_done', 0)}/{remote} inference jobs done, "
            f"{job.get('remote_status') or 'submitted'}"
        )
    if state == JobStateName.INGESTING.value:
        reported = len(jobs.chunk_totals(job["job_id"]).reported)
        return f"INGESTING  {reported}/{job.get('chunks', '?')} chunks indexed"
    if state == JobStateName.CREATED.value and "records_in" in job:
        return f"PREPARED  {job['records_in']} records, {job.get('dead_lettered', 0)} bad lines set aside"
    if JobStateName(state).terminal:
        counts = [job.get(key, 0) for key in ("records_in", "indexed", "dead_lettered")]
        kept = f" unchanged={job['unchanged']}" if job.get("unchanged") else ""
        return "{}  in={} indexed={} dead-lettered={}".format(state, *counts) + kept
    return state


def canary_verdict(job: dict[str, Any], canary: Canary) -> bool:
    completed = job["state"] == JobStateName.COMPLETED.value and int(job.get("indexed", 0)) == canary.records
    verdict = "the trigger works" if completed else "THE TRIGGER OR THE PIPELINE IS BROKEN"
    indexed = f"{job.get('indexed', 0)}/{canary.records} indexed"
    print(f"canary: job {job['job_id']} {job['state']}, {indexed}: {verdict}")
    return completed


def summarize(jobs: dict[str, dict[str, Any]], uploads: list[Upload], wall: float) -> bool:
    rows, totals = [], [0, 0, 0, 0]
    for upload in uploads:
        job = jobs[upload.job_id]
        counts = [int(job.get(key, 0)) for key in ("records_in", "indexed", "unchanged", "dead_lettered")]
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
        rows.append([upload.name, job["state"], *counts])
    rows.append(["total", "", *totals])
    records_in, indexed, unchanged, dead = totals
    # unchanged: records an earlier run already indexed with the same text and model (osbatch.incremental);
    # the column and the term appear only when there are any.
    headers = ["FILE", "STATE", "RECORDS IN", "INDEXED", "UNCHANGED", "DEAD-LETTERED"]
    if not unchanged:
        headers.remove("UNCHANGED")
        rows = [row[:4] + row[5:] for row in rows]
    print("\n" + table(rows, headers))
    conserved = records_in == indexed + unchanged + dead
    kept, kept_figure = (" + unchanged", f" + {unchanged}") if unchanged else ("", "")
    print(
        f"\nindexed{kept} = records_in - dead_lettered: {indexed}{kept_figure} = {records_in} - {dead} "
        f"{'holds' if conserved else 'DOES NOT HOLD'}; "
        f"dead-lettered {dead} of the sample's {EXPECTED_DEAD_LETTERS} deliberately bad lines; "
        f"wall time {wall:.1f}s"
    )
    all_completed = all(job["state"] == JobStateName.COMPLETED.value for job in jobs.values())
    return conserved and dead == EXPECTED_DEAD_LETTERS and all_completed
