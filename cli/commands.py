"""The CLI's commands. Each takes parsed arguments, does one thing, and returns an exit code.

Each command imports what it uses inside itself, so one command never pays for another's imports: boto3
and the job table for `jobs`, the search client for `search`, the local runtime only for the commands that
act on it (`up`, `down`, `demo`, `deploy --local`, and `status`, `search`, `setup`, `batch-ingest`, `cancel`
where they find it up). pyproject.toml's import contracts and tests/unit/test_cli_imports.py hold
that line.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from cli.batch_progress import BatchDisplay
    from cli.target import Target
    from osbatch.backends.query_vectors import QueryEmbedder
    from osbatch.config import PipelineConfig

# The repository: pipeline globs are relative to it, as app.py reads them.
REPO_ROOT = Path(__file__).resolve().parent.parent


class CommandError(RuntimeError):
    """A command cannot do what was asked; the message says why and what to do."""


class Unreachable(CommandError):
    """Neither the local runtime nor AWS answered (cli.exit_codes: UNREACHABLE)."""


class NoJobStarted(CommandError):
    """`submit` uploaded a file but no job appeared; the message names the likely cause."""


# AWS error codes for credentials it does not accept: AWS is not reachable with them, as with none at all
# (AWS STS API Reference, "Common Errors", docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html).
REFUSED_CREDENTIALS = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
)


def _credentials_refused(error: Exception) -> bool:
    from botocore.exceptions import ClientError

    return (
        isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in REFUSED_CREDENTIALS
    )


def exit_code_for(error: Exception) -> ExitCode | None:
    """The exit code of an error the CLI reports in one line, or None for a bug (a traceback)."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )
    from opensearchpy.exceptions import ConnectionError as OpenSearchUnreachable

    from cli.job_filters import FilterError
    from cli.target import TargetError
    from osbatch.config import ConfigError

    unreachable = (
        Unreachable,
        TargetError,
        EndpointConnectionError,
        ConnectTimeoutError,
        NoCredentialsError,
        NoRegionError,
        OpenSearchUnreachable,
    )
    if isinstance(error, unreachable) or _credentials_refused(error):
        return ExitCode.UNREACHABLE
    if isinstance(error, NoJobStarted):
        return ExitCode.NO_JOB
    if isinstance(error, ConfigError | CommandError | FilterError):
        return ExitCode.USAGE
    return None


@contextlib.contextmanager
def _local_runtime_errors() -> Iterator[None]:
    """The local runtime's own errors (a process that would not start, an unknown demo backend), as ours."""
    from local.demo_backends import UnknownBackend
    from local.process import StartupError

    try:
        yield
    except (StartupError, UnknownBackend) as error:
        raise CommandError(str(error)) from None


def up(args: argparse.Namespace) -> int:
    from local.runtime import local_runtime

    with _local_runtime_errors():
        local_runtime().up()
    return ExitCode.OK


def down(args: argparse.Namespace) -> int:
    from local.runtime import local_runtime

    with _local_runtime_errors():
        local_runtime().down()
    return ExitCode.OK


def status(args: argparse.Namespace) -> int:
    from cli.target import TargetError, resolve_target

    if args.job_id:
        return _job_status(args.job_id, as_json=args.json)
    from local.runtime import local_runtime

    pieces = local_runtime().status()
    try:
        target = resolve_target()
        acts_on: dict[str, Any] = {"target": target.name, "endpoint": target.endpoint_url or "AWS"}
        acts_on_line = f"commands act on: {target.name} stack ({target.endpoint_url or 'AWS'})"
    except TargetError as error:
        acts_on = {"target": None, "error": str(error)}
        acts_on_line = f"commands act on: nothing yet ({error})"
    if args.json:
        from cli.output import to_json

        described = [{"running": piece.running, "description": piece.describe()} for piece in pieces]
        print(to_json({"pieces": described, "acts_on": acts_on}))
    else:
        for piece in pieces:
            print(piece.describe())
        print(acts_on_line)
    return ExitCode.OK if all(piece.running for piece in pieces) else ExitCode.FAILED


def _job_status(job_id: str, *, as_json: bool) -> int:
    from cli.job_status import decoded, plain_text, print_rich, summarize
    from cli.output import is_terminal, public, to_json
    from osbatch.contracts import dead_letter_prefix, report_key
    from osbatch.models import JobStateName

    target = _target()
    job = target.jobs.get(job_id)
    if job is None:
        raise CommandError(f"no job {job_id}; `osbatch jobs` lists them")
    if as_json:
        print(to_json(public(decoded(job))))  # estimate and actual as objects, side by side
    else:
        summary = summarize(
            job,
            dead_letters=f"s3://{target.output('DeadLetterBucketName')}/{dead_letter_prefix(job_id)}",
            report=f"s3://{target.output('OutputBucketName')}/{report_key(job_id)}",
        )
        if is_terminal():
            print_rich(summary)
        else:
            print(plain_text(summary))
    return ExitCode.FAILED if job.get("state") == JobStateName.FAILED.value else ExitCode.OK


def deploy(args: argparse.Namespace) -> int:
    from local.deploy import deploy_local
    from local.runtime import local_runtime

    runtime = local_runtime()
    if not runtime.is_up():
        raise CommandError("the local runtime is not up; run `osbatch up` first")
    stack = deploy_local(args.pipelines, opensearch_url=runtime.opensearch.url)
    print(f"deployed stack {stack.stack_name} into the local runtime ({len(stack.resources)} resources)")
    return ExitCode.OK


def demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo
    from local.demo_backends import DEFAULT_BACKEND

    with _local_runtime_errors():
        return run_demo(args.backend or DEFAULT_BACKEND)


def submit(args: argparse.Namespace) -> int:
    from cli.submit import ignored_because

    config = _pipeline(args.pipelines, args.pipeline)  # a bad config is reported before anything is sent
    pipelines = {known.name: known for known in _pipelines(args.pipelines)}
    keys = {}
    for path in args.files:  # every file is checked before any is uploaded
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        keys[path] = f"{config.source.prefix}{path.name}"
        reason = ignored_because(keys[path], config, pipelines)
        if reason:
            raise CommandError(f"{path}: not uploaded, the trigger would ignore it: {reason}")
    if args.dry_run:
        from cli.plan import dry_run

        return dry_run(args)
    target = _target()
    s3 = target.client("s3")
    bucket = target.output("InputBucketName")
    silent, started = [], []
    # One wait for all the uploads: each file's job gets whatever of it the ones before left.
    deadline = time.monotonic() + args.appear_timeout
    for path, key in keys.items():
        uri = f"s3://{bucket}/{key}"
        job, seen_before = _upload(target, s3, bucket, key, path, config.name, deadline)
        if args.json:
            from cli.output import to_json

            print(to_json({"file": str(path), "uri": uri, "job_id": job and job["job_id"]}, indent=None))
        elif job is None:
            print(f"uploaded {path} to {uri}; no job yet")
        elif seen_before:
            print(f"uploaded {path} to {uri}: the same content as job {job['job_id']} ({job['state']})")
        else:
            print(f"uploaded {path} to {uri}: job {job['job_id']} ({job['state']})")
        if job is None and args.appear_timeout > 0:
            silent.append(key)
        elif job is not None:
            started.append(job["job_id"])
    if silent:
        raise NoJobStarted(_no_job_message(target, s3, bucket, silent, args.appear_timeout))
    return _follow(target, args, started) if args.wait else ExitCode.OK


def _follow(target: Target, args: argparse.Namespace, job_ids: list[str]) -> int:
    """`submit --wait`: watch each job to its end; FAILED if any did not complete."""
    from cli.output import is_terminal
    from cli.watch import exit_code, renderer_for, watch_job

    source = progress_source(target, args.pipelines, args.pipeline)
    codes = [
        exit_code(watch_job(source, job_id, renderer_for(as_json=args.json, terminal=is_terminal())))
        for job_id in job_ids
    ]
    return max(codes, default=ExitCode.OK)


def _upload(
    target: Target, s3: Any, bucket: str, key: str, path: Path, pipeline: str, deadline: float
) -> tuple[dict[str, Any] | None, bool]:
    """Upload one file; its job once it appears (None at the `time.monotonic()` deadline), and whether
    the job existed before the upload."""
    from cli.submit import wait_for_job
    from osbatch.models import job_id_for

    s3.upload_file(str(path), bucket, key)
    # The job id the submit function derives from the object (osbatch.steps.submit): the same bytes at the
    # same key are the same job, which it does not start again.
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    job_id = job_id_for(pipeline, bucket, key, etag)
    existing = target.jobs.get(job_id)
    left = deadline - time.monotonic()
    if existing is not None or left <= 0:
        return existing, existing is not None
    return wait_for_job(lambda: target.jobs.get(job_id), left), False


def _no_job_message(target: Target, s3: Any, bucket: str, keys: list[str], timeout: float) -> str:
    from cli.submit import TriggerCheck

    check = TriggerCheck(
        events=target.client("events"),
        s3=s3,
        sqs=target.client("sqs"),
        submit_queue_url=target.outputs.get("SubmitQueueUrl"),
        submit_dlq_url=target.outputs.get("SubmitDlqUrl"),
    )
    causes = check.causes(bucket, keys[0])
    found = "; ".join(causes) or (
        "the bucket's notifications, the pipeline's rule and the submit queues look fine: the submit "
        "function may be slow or failing; see its logs, and `osbatch jobs` in a moment"
    )
    return f"no job appeared within {timeout:g}s for {', '.join(keys)}: {found}"


def jobs(args: argparse.Namespace) -> int:
    import sys

    from cli.job_filters import parse_since, parse_state, select_jobs

    state = parse_state(args.state) if args.state else None
    since = parse_since(args.since) if args.since else None
    filtering = state is not None or since is not None
    # Filters apply before the limit, so with one the command reads every job of the pipeline (or table).
    listed = _target().jobs.list_jobs(args.pipeline, sys.maxsize if filtering else args.limit)
    chosen = select_jobs(listed, state=state, since=since, limit=args.limit)
    if args.json:
        from cli.output import public, to_json

        print(to_json([public(job) for job in chosen]))
    else:
        from cli.views import jobs_table

        print(jobs_table(chosen) if chosen or not filtering else "no jobs match those filters")
    return ExitCode.OK


def watch(args: argparse.Namespace) -> int:
    from cli.output import is_terminal
    from cli.watch import exit_code, renderer_for, watch_job

    target = _target()
    job = target.jobs.get(args.job_id)
    if job is None:
        raise CommandError(f"no job {args.job_id}; `osbatch jobs` lists them")
    source = progress_source(target, args.pipelines, job.get("pipeline"))
    renderer = renderer_for(as_json=args.json, terminal=is_terminal())
    return exit_code(watch_job(source, args.job_id, renderer, interval=args.interval))


def progress_source(target: Target, pattern: str, pipeline: str | None) -> Any:
    from cli.progress import RemoteCounter
    from cli.watch import ProgressSource
    from osbatch.config import Backend

    def backend() -> Any:
        """Built at the first running remote job: a job watched after its end needs no pipeline config."""
        config = {config.name: config for config in _pipelines(pattern)}.get(pipeline or "")
        # Only these services count records while a remote job runs (cli/progress.py).
        if config is None or config.inference.backend not in (Backend.BEDROCK, Backend.OPENAI):
            return None
        return _backend(target, config)

    return ProgressSource(
        target.jobs, target.client("s3"), target.output("OutputBucketName"), RemoteCounter(backend)
    )


def report(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from cli.output import to_json
    from cli.report_data import gather
    from cli.views import table
    from osbatch.models import JobStateName

    data = gather(_target(), args.job_id)
    if data is None:
        raise CommandError(f"no job {args.job_id}; `osbatch jobs` lists them")
    if args.html:
        from cli.report_page import render

        args.html.write_text(render(data), encoding="utf-8")
        print(f"wrote {args.html} (job {args.job_id}, {data.job['state']}); it opens offline in any browser")
    elif args.json:
        print(
            to_json(
                {
                    "job": data.job_id,
                    "report": data.report,
                    **{k: v for k, v in asdict(data).items() if k != "job"},
                }
            )
        )
    else:
        figures = data.report or data.job
        keys = ("state", "records_in", "indexed", "dead_lettered", "unaccounted", "reason")
        print(table([[key, figures.get(key)] for key in keys if figures.get(key) is not None], ["", ""]))
        rows = [[g.stage, g.count, g.reason] for g in data.dead_letters]
        if rows:
            print("\n" + table(rows, ["STAGE", "RECORDS", "REASON"]))
    return ExitCode.FAILED if data.job.get("state") == JobStateName.FAILED.value else ExitCode.OK


def dashboard(args: argparse.Namespace) -> int:
    """Exit FAILED when a metric widget has no data: the functions did not emit what it charts."""
    from cli.dashboard import dashboard_body, fill, gaps, read_widgets
    from cli.target import STACK_NAME

    target = _target()
    cloudwatch = target.client("cloudwatch")
    name, body = dashboard_body(target.client("cloudformation"), cloudwatch, STACK_NAME)
    widgets = read_widgets(body)
    # The local CloudWatch (moto) computes no percentiles; CloudWatch on AWS does.
    fill(widgets, cloudwatch, percentiles=target.name != "local")
    empty = gaps(widgets)
    if args.html:
        from cli.dashboard_page import render

        args.html.write_text(render(name, widgets), encoding="utf-8")
        print(f"wrote {args.html}: dashboard {name}, {len(widgets)} widgets")
    if args.json:
        from dataclasses import asdict

        from cli.output import to_json

        print(
            to_json({"dashboard": name, "widgets": [asdict(w) for w in widgets], "empty": empty}, indent=None)
        )
    elif empty:
        print(f"{len(empty)} metric widget(s) without data:")
        for line in empty:
            print(f"  {line}")
    return ExitCode.FAILED if empty else ExitCode.OK


def cancel(args: argparse.Namespace) -> int:
    from osbatch.models import JobStateName, RemoteJob

    target = _target()
    job = target.jobs.get(args.job_id)
    if job is None:
        raise CommandError(f"no job {args.job_id}; `osbatch jobs` lists them")
    if JobStateName(job["state"]).terminal:
        raise CommandError(f"job {args.job_id} already ended ({job['state']})")
    remote_jobs = job.get("remote_jobs") or []
    if not remote_jobs:
        raise CommandError(f"job {args.job_id} has no inference job yet; try again in a moment")
    backend = _backend(target, _pipeline(args.pipelines, job["pipeline"]))
    # Every remote job of the upload, each with its output place (the OpenAI backend keeps its batch
    # ledger there); StartJob records them in the job table as it creates them.
    for ref in remote_jobs:
        backend.cancel(RemoteJob(id=ref["id"], arn=ref.get("arn", ""), output_uri=ref["output_uri"]))
    target.jobs.update(args.job_id, JobStateName.CANCELLING)
    print(f"cancelling {args.job_id}; the workflow records CANCELLED once the inference job has stopped")
    return ExitCode.OK


def search(args: argparse.Namespace) -> int:
    from cli.search import SearchSetupError, print_response, run_search
    from osbatch.search.queries import Mode

    config = _pipeline(args.pipelines, args.pipeline)
    mode = Mode(args.mode)
    local = _local_node()
    client = local or _opensearch(_target(), config)
    query_vector = _query_vector(config, local=local is not None) if mode is not Mode.NEURAL else None
    try:
        response = run_search(
            client,
            config,
            args.query,
            k=args.k,
            mode=mode,
            search_pipeline=args.search_pipeline,
            query_vector=query_vector,
        )
    except SearchSetupError as error:
        raise CommandError(str(error)) from None
    print_response(response, config, as_json=args.json)
    return ExitCode.OK


def _query_vector(config: PipelineConfig, *, local: bool) -> QueryEmbedder | None:
    """The query's vector from the model that embedded the documents (cli/search.py: query_embedder)."""
    if local:
        from cli.local_search import local_query_embedder

        return local_query_embedder(config)
    import boto3

    from cli.search import query_embedder

    session = boto3.session.Session()
    return query_embedder(config, lambda service: session.client(service))  # type: ignore[call-overload]


def setup(args: argparse.Namespace) -> int:
    from opensearchpy.exceptions import TransportError

    from osbatch.search.ml import MlCommonsError
    from osbatch.search.provision import ProvisionError

    config = _pipeline(args.pipelines, args.pipeline)  # every search-side rule is checked before sending
    # With --json, stdout holds only the JSON; the local setup's notes go to stderr.
    notes = _to_stderr if args.json else print
    try:
        result = _provision(config, args.connector_role_arn, notes)
    except (ProvisionError, MlCommonsError) as error:
        raise CommandError(str(error)) from None
    except TransportError as error:
        raise CommandError(f"OpenSearch refused a setup request: {error.info or error}") from None
    if args.json:
        from dataclasses import asdict

        from cli.output import to_json

        changes = [asdict(change) for change in result.changes]
        print(to_json({"pipeline": config.name, "changed": result.changed, "changes": changes}))
        return ExitCode.OK
    for change in result.changes:
        print(change.describe())
    print("nothing changed" if not result.changed else f"pipeline {config.name}: search side provisioned")
    return ExitCode.OK


def _to_stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def _provision(config: PipelineConfig, role_arn: str | None, notes: Callable[[str], None] = print) -> Any:
    from osbatch.search.connectors import ConnectorTarget
    from osbatch.search.provision import provision_search

    local = _local_node()
    if local is not None:
        from local.runtime import local_runtime
        from local.search_setup import provision_local

        if not local_runtime().models.status().running:
            raise CommandError("the local model server is not running; run `osbatch up` first")
        return provision_local(local, config, notes)
    if not role_arn:
        raise CommandError("on AWS, connectors sign as a role: pass --connector-role-arn")
    target = _target()
    connectors = ConnectorTarget(role_arn=role_arn, region=target.session.region_name)
    return provision_search(_opensearch(target, config), config, target=connectors)


def _local_node() -> Any:
    """A client for the local node when it is up: search and setup need only the node (and model server)."""
    from local.runtime import local_runtime
    from osbatch.search.client import opensearch_client

    node = local_runtime().opensearch
    return opensearch_client(node.url) if node.ready() else None


def _search_client(config: PipelineConfig) -> Any:
    return _local_node() or _opensearch(_target(), config)


def batch_ingest(args: argparse.Namespace) -> int:
    import boto3

    from cli.batch_ingest import BatchIngestError, load_request, run
    from cli.batch_progress import batch_display
    from cli.output import is_terminal
    from osbatch.config import BulkConfig
    from osbatch.search.client import opensearch_client

    display = batch_display(as_json=args.json, terminal=is_terminal())
    try:
        request = load_request(args.request)
        if args.stack:
            return _batch_ingest_on_stack(args, request, display)
        endpoint = args.endpoint
        if endpoint is None:
            from local.runtime import local_runtime

            runtime = local_runtime()
            if not runtime.opensearch.status().running:
                raise CommandError("no --endpoint and the local runtime is not up (osbatch up)")
            endpoint = runtime.opensearch.url
        session = boto3.session.Session()
        report = run(
            request,
            opensearch=opensearch_client(endpoint, session.region_name),
            s3=session.client("s3") if request.data_source.type == "s3" else None,
            dead_letter_dir=args.dead_letters,
            bulk=BulkConfig(concurrency=args.concurrency),
            display=display,
        )
    except BatchIngestError as error:
        raise CommandError(str(error)) from None
    return ExitCode.FAILED if report.dead_lettered else ExitCode.OK


def _batch_ingest_on_stack(args: argparse.Namespace, request: Any, display: BatchDisplay) -> int:
    import json
    import sys
    import tempfile
    from pathlib import Path

    from cli.batch_stack import pipeline_for, run_on_stack

    config = pipeline_for(request, _pipelines(args.pipelines), args.pipeline)
    target = _target()
    with tempfile.TemporaryDirectory(prefix="osbatch-batch-") as scratch:
        report = run_on_stack(
            json.loads(args.request.read_text(encoding="utf-8")),
            request,
            config,
            outputs=target.outputs,
            s3=target.client("s3"),
            stepfunctions=target.client("stepfunctions"),
            jobs=target.jobs,
            scratch=Path(scratch),
            display=display,
            # With --json, stdout holds only JSON lines: notes such as "already ran" go to stderr.
            say=(lambda line: print(line, file=sys.stderr)) if args.json else print,
        )
    return ExitCode.FAILED if report.dead_lettered else ExitCode.OK


def replay(args: argparse.Namespace) -> int:
    from cli.replay import replay_job
    from osbatch.contracts import DEAD_LETTER_PREFIX

    target = _target()
    job_id = args.job or args.what
    if args.what.startswith("s3://") and not args.job:
        # dead-letter/<job>/<stage>/<part>.jsonl
        job_id = args.what.split(DEAD_LETTER_PREFIX, 1)[-1].split("/", 1)[0]
    job = target.jobs.get(job_id)
    if job is None:
        raise CommandError(f"no job {job_id}")
    config = _pipeline(args.pipelines, job["pipeline"])
    report = replay_job(
        args.what,
        job_id=job_id,
        config=config,
        s3=target.client("s3"),
        bucket=target.output("DeadLetterBucketName"),
        opensearch=_opensearch(target, config),
        resubmit_dir=Path.cwd(),
        jobs=target.jobs,
    )
    return ExitCode.FAILED if report.dead_lettered else ExitCode.OK


def _backend(target: Target, config: PipelineConfig) -> Any:
    """The pipeline's inference backend as its functions build it, with the target's clients."""
    from osbatch.backends import backend_for

    if target.name == "local":  # deployed pointing at the local OpenAI emulator, as deploy_local does
        from local.deploy import with_local_openai
        from local.runtime import OPENAI_URL

        (config,) = with_local_openai([config], OPENAI_URL)
    return backend_for(config, target.client, opensearch=lambda: _search_client(config))


def _target() -> Target:
    from cli.target import TargetError, resolve_target

    try:
        return resolve_target()
    except TargetError as error:
        raise Unreachable(str(error)) from None


def _pipelines(pattern: str) -> list[PipelineConfig]:
    """The configs app.py would synthesize, read the same way (relative to the repository)."""
    from infra.pipelines import load_pipelines

    return load_pipelines(pattern, REPO_ROOT)


def _pipeline(pattern: str, name: str) -> PipelineConfig:
    configs = {config.name: config for config in _pipelines(pattern)}
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise CommandError(f"no pipeline '{name}' in {pattern}; known: {known}")
    return configs[name]


def _opensearch(target: Target, config: PipelineConfig) -> Any:
    from osbatch.search.client import opensearch_client

    endpoint = target.opensearch_url or config.sink.opensearch.endpoint
    if not endpoint:
        raise CommandError(f"pipeline {config.name} has no OpenSearch endpoint")
    # An AWS domain's endpoint names its region; anything else is signed for the configured one.
    return opensearch_client(endpoint, target.session.region_name)
