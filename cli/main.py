"""`osbatch`: the command line for the local runtime, jobs, and search.

Every command works against the local runtime when it is up and the stack is deployed there,
and against AWS otherwise (the stack's CloudFormation outputs say where everything is).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cli import commands
from local.demo_backends import DEFAULT_BACKEND, DEMO_BACKENDS, UnknownBackend
from local.process import StartupError
from osbatch.config import ConfigError

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="osbatch", description="Offline batch ML inference for OpenSearch.")
    parser.add_argument(
        "--pipelines",
        default=os.environ.get("OSBATCH_PIPELINES_GLOB", "pipelines/*.yaml"),
        help="pipeline configs, a glob relative to the repository (default: pipelines/*.yaml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(run=run)
        return command

    add("up", commands.up, "start the local runtime (OpenSearch node and AWS emulator)")
    add("down", commands.down, "stop the local runtime")
    status = add("status", commands.status, "what runs where; with a job id, that job in detail")
    status.add_argument("job_id", nargs="?")
    deploy = add("deploy", commands.deploy, "deploy the stack into the local runtime (on AWS: cdk deploy)")
    deploy.add_argument("--local", action="store_true", required=True, help="deploy into the local runtime")
    demo = add(
        "demo", commands.demo, "the whole pipeline on sample data, locally; the runtime stays up afterwards"
    )
    demo.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        help=f"the inference backend the sample runs through: {', '.join(sorted(DEMO_BACKENDS))} "
        f"(default {DEFAULT_BACKEND})",
    )
    submit = add("submit", commands.submit, "upload JSONL files as input for a pipeline")
    submit.add_argument("files", nargs="+", type=Path)
    submit.add_argument("--pipeline", required=True)
    jobs = add("jobs", commands.jobs, "list jobs, newest first")
    jobs.add_argument("--pipeline")
    jobs.add_argument("--limit", type=int, default=50)
    cancel = add("cancel", commands.cancel, "stop a job's inference; the workflow records it as CANCELLED")
    cancel.add_argument("job_id")
    search = add("search", commands.search, "k-NN, neural or hybrid search in a pipeline's index")
    search.add_argument("query")
    search.add_argument("--pipeline", required=True)
    search.add_argument("-k", "--k", type=int, default=10, help="hits to return (default 10)")
    search.add_argument(
        "--mode",
        choices=["knn", "neural", "hybrid"],
        default="knn",
        help="knn: embed the query here; neural: the node embeds it; hybrid: BM25 and vector, normalized",
    )
    search.add_argument("--search-pipeline", help="run the hits through this search pipeline")
    search.add_argument("--json", action="store_true", help="print the raw response")
    setup = add("setup", commands.setup, "create or update a pipeline's index, models and search pipelines")
    setup.add_argument("--pipeline", required=True)
    setup.add_argument("--connector-role-arn", help="on AWS: the role ML Commons connectors sign as")
    batch = add(
        "batch-ingest",
        commands.batch_ingest,
        "run an ML Commons _batch_ingestion request body (index_name, field_map, data_source) as is",
    )
    batch.add_argument("request", type=Path, help="the JSON body of POST /_plugins/_ml/_batch_ingestion")
    batch.add_argument("--endpoint", help="OpenSearch URL (default: the local node when the runtime is up)")
    batch.add_argument(
        "--dead-letters", type=Path, default=Path("dead-letters"), help="directory for dead letters"
    )
    batch.add_argument("--concurrency", type=int, default=2, help="bulk requests in flight")
    batch.add_argument(
        "--stack",
        action="store_true",
        help="run it on the deployed stack's Distributed Map (the local runtime's when it is up, else AWS)",
    )
    batch.add_argument(
        "--pipeline", help="with --stack: the pipeline it runs under (default: the one whose index it names)"
    )
    replay = add("replay", commands.replay, "re-ingest a job's dead letters once their cause is fixed")
    replay.add_argument("what", help="a job id, or the s3:// URI of one dead-letter object")
    replay.add_argument("--job", help="the job of a dead-letter object (default: read from its key)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, commands.CommandError, StartupError, UnknownBackend) as error:
        print(f"osbatch: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("osbatch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
