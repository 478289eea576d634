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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cli.target import Target
    from osbatch.backends.query_vectors import QueryEmbedder
    from osbatch.config import PipelineConfig

# The repository: pipeline globs are relative to it, as app.py reads them.
REPO_ROOT = Path(__file__).resolve().parent.parent


class CommandError(RuntimeError):
    """A command cannot do what was asked; the message says why and what to do."""


def is_expected(error: Exception) -> bool:
    """An error the CLI reports in one line (exit 2) rather than with a traceback."""
    from osbatch.config import ConfigError

    return isinstance(error, ConfigError | CommandError)


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
    return 0


def down(args: argparse.Namespace) -> int:
    from local.runtime import local_runtime

    with _local_runtime_errors():
        local_runtime().down()
    return 0


def status(args: argparse.Namespace) -> int:
    from cli.target import TargetError, resolve_target
    from cli.views import job_detail

    if args.job_id:
        job = _target().jobs.get(args.job_id)
        if job is None:
            raise CommandError(f"no job {args.job_id}; `osbatch jobs` lists them")
        print(job_detail(job))
        return 0
    from local.runtime import local_runtime

    pieces = local_runtime().status()
    for piece in pieces:
        print(piece.describe())
    try:
        target = resolve_target()
        print(f"commands act on: {target.name} stack ({target.endpoint_url or 'AWS'})")
    except TargetError as error:
        print(f"commands act on: nothing yet ({error})")
    return 0 if all(piece.running for piece in pieces) else 1


def deploy(args: argparse.Namespace) -> int:
    from local.deploy import deploy_local
    from local.runtime import local_runtime

    runtime = local_runtime()
    if not runtime.is_up():
        raise CommandError("the local runtime is not up; run `osbatch up` first")
    stack = deploy_local(args.pipelines, opensearch_url=runtime.opensearch.url)
    print(f"deployed stack {stack.stack_name} into the local runtime ({len(stack.resources)} resources)")
    return 0


def demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo
    from local.demo_backends import DEFAULT_BACKEND

    with _local_runtime_errors():
        return run_demo(args.backend or DEFAULT_BACKEND)


def submit(args: argparse.Namespace) -> int:
    config = _pipeline(args.pipelines, args.pipeline)  # a bad config is reported before anything is sent
    target = _target()
    s3 = target.client("s3")
    bucket = target.output("InputBucketName")
    for path in args.files:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        key = f"{config.source.prefix}{path.name}"
        s3.upload_file(str(path), bucket, key)
        print(f"uploaded {path} to s3://{bucket}/{key}")
    return 0


def jobs(args: argparse.Namespace) -> int:
    from cli.views import jobs_table

    print(jobs_table(_target().jobs.list_jobs(args.pipeline, args.limit)))
    return 0


def cancel(args: argparse.Namespace) -> int:
    from osbatch.backends import backend_for
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
    config = _pipeline(args.pipelines, job["pipeline"])
    if target.name == "local":  # deployed pointing at the local OpenAI emulator, as deploy_local does
        from local.deploy import with_local_openai
        from local.runtime import OPENAI_URL

        (config,) = with_local_openai([config], OPENAI_URL)
    backend = backend_for(config, target.client, opensearch=lambda: _search_client(config))
    # Every remote job of the upload, each with its output place (the OpenAI backend keeps its batch
    # ledger there); StartJob records them in the job table as it creates them.
    for ref in remote_jobs:
        backend.cancel(RemoteJob(id=ref["id"], arn=ref.get("arn", ""), output_uri=ref["output_uri"]))
    target.jobs.update(args.job_id, JobStateName.CANCELLING)
    print(f"cancelling {args.job_id}; the workflow records CANCELLED once the inference job has stopped")
    return 0


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
    return 0


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
    try:
        result = _provision(config, args.connector_role_arn)
    except (ProvisionError, MlCommonsError) as error:
        raise CommandError(str(error)) from None
    except TransportError as error:
        raise CommandError(f"OpenSearch refused a setup request: {error.info or error}") from None
    for change in result.changes:
        print(change.describe())
    print("nothing changed" if not result.changed else f"pipeline {config.name}: search side provisioned")
    return 0


def _provision(config: PipelineConfig, role_arn: str | None) -> Any:
    from osbatch.search.connectors import ConnectorTarget
    from osbatch.search.provision import provision_search

    local = _local_node()
    if local is not None:
        from local.runtime import local_runtime
        from local.search_setup import provision_local

        if not local_runtime().models.status().running:
            raise CommandError("the local model server is not running; run `osbatch up` first")
        return provision_local(local, config)
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
    from osbatch.config import BulkConfig
    from osbatch.search.client import opensearch_client

    try:
        request = load_request(args.request)
        if args.stack:
            return _batch_ingest_on_stack(args, request)
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
        )
    except BatchIngestError as error:
        raise CommandError(str(error)) from None
    return 1 if report.dead_lettered else 0


def _batch_ingest_on_stack(args: argparse.Namespace, request: Any) -> int:
    import json
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
        )
    return 1 if report.dead_lettered else 0


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
    )
    return 1 if report.dead_lettered else 0


def _target() -> Target:
    from cli.target import TargetError, resolve_target

    try:
        return resolve_target()
    except TargetError as error:
        raise CommandError(str(error)) from None


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
