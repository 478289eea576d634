"""`osbatch`: the command line for the local runtime, jobs, and search.

Every command works against the local runtime when it is up and the stack is deployed there,
and against AWS otherwise (the stack's CloudFormation outputs say where everything is).

This module imports nothing but the standard library: the parser names each command's function in
cli/commands.py (or in a module of its own, as cli/plan.py for `plan`), imported once a command runs, so
`osbatch --help` starts in a fraction of a second and each command loads only what it uses
(bench/cli_startup.py; the import contracts in pyproject.toml).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cli.exit_codes import ExitCode, exit_codes_help

# The demo's backends, for its help text; local/demo_backends.py's DEMO_BACKENDS is the table itself
# (tests/unit/test_demo_backends.py keeps the two the same).
DEMO_BACKEND_HELP = "sagemaker (the default), bedrock, openai or ml-commons"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osbatch",
        description="Offline batch ML inference for OpenSearch.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pipelines",
        default=os.environ.get("OSBATCH_PIPELINES_GLOB", "pipelines/*.yaml"),
        help="pipeline configs, a glob relative to the repository (default: pipelines/*.yaml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, module: str = "cli.commands") -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(run=name.replace("-", "_"), module=module)  # its function in that module
        return command

    add("up", "start the local runtime (OpenSearch node and AWS emulator)")
    add("down", "stop the local runtime")
    status = add("status", "what runs where; with a job id, that job in detail")
    status.add_argument("job_id", nargs="?")
    status.add_argument("--json", action="store_true", help="print the job (or the runtime's pieces) as JSON")
    deploy = add("deploy", "deploy the stack into the local runtime (on AWS: cdk deploy)")
    deploy.add_argument("--local", action="store_true", required=True, help="deploy into the local runtime")
    demo = add("demo", "the whole pipeline on sample data, locally; the runtime stays up afterwards")
    demo.add_argument("--backend", help=f"the inference backend the sample runs through: {DEMO_BACKEND_HELP}")
    submit = add("submit", "upload JSONL files as input for a pipeline")
    submit.add_argument("files", nargs="+", type=Path)
    submit.add_argument("--pipeline", required=True)
    submit.add_argument(
        "--appear-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for each upload's job to appear before looking for the cause (default 30; "
        "0: do not wait)",
    )
    submit.add_argument("--json", action="store_true", help="print each upload and its job as a JSON line")
    submit.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan for these files (as `osbatch plan`: records, jobs, time, cost); upload nothing",
    )
    submit.add_argument(
        "--wait", action="store_true", help="then follow each job until it ends, as `osbatch watch` does"
    )
    plan = add(
        "plan",
        "what a run of these files would send, create, take and cost; submits nothing",
        module="cli.plan",
    )
    plan.add_argument("files", nargs="+", help="JSONL files: local paths or s3://bucket/key")
    plan.add_argument("--pipeline", required=True)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--prices", type=Path, action="append", default=[], help="a price table overriding the package's"
    )
    plan.add_argument(
        "--throughput",
        type=Path,
        action="append",
        default=[],
        help="a throughput table overriding the package's",
    )
    plan.add_argument(
        "--tokens",
        choices=["exact", "estimate"],
        default="exact",
        help="exact: the model's own tokenizer where osbatch has it (MiniLM; about 1 MB/s on one core); "
        "estimate: UTF-8 bytes / 4, labelled as an estimate (default: exact)",
    )
    plan.add_argument(
        "--index",
        action="store_true",
        help="also read the pipeline's index on the current target: how many documents another model or "
        "chunking config embedded (their records count as changed)",
    )
    plan.add_argument(
        "--tokenizer", type=Path, help="all-MiniLM-L6-v2's tokenizer.json (default: the installed one)"
    )
    jobs = add("jobs", "list jobs, newest first")
    jobs.add_argument("--pipeline", help="only this pipeline's jobs")
    jobs.add_argument("--state", type=str.upper, help="only jobs in this state (e.g. FAILED, RUNNING)")
    jobs.add_argument("--since", help="only jobs created within this long, e.g. 30m, 1h, 2d")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    jobs.add_argument("--json", action="store_true", help="print the jobs as a JSON array")
    watch = add("watch", "a job's progress until it ends (bars at a terminal, lines otherwise)")
    watch.add_argument("job_id")
    watch.add_argument("--json", action="store_true", help="print each change as a JSON line")
    watch.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="seconds between looks (default 1)"
    )
    report = add("report", "a job's report: its figures, or a self-contained page with charts (--html)")
    report.add_argument("job_id")
    report.add_argument(
        "--html", type=Path, metavar="FILE", help="write the report page here (opens offline)"
    )
    report.add_argument("--json", action="store_true", help="print the report's data as JSON")
    dashboard = add("dashboard", "the stack's CloudWatch dashboard with its metrics, as a page (--html)")
    dashboard.add_argument("--html", type=Path, metavar="FILE", help="write the page here (opens offline)")
    dashboard.add_argument("--json", action="store_true", help="print each widget's series as JSON")
    cancel = add("cancel", "stop a job's inference; the workflow records it as CANCELLED")
    cancel.add_argument("job_id")
    search = add("search", "k-NN, neural or hybrid search in a pipeline's index")
    search.add_argument("query")
    search.add_argument("--pipeline", required=True)
    search.add_argument("-k", "--k", type=int, default=10, help="hits to return (default 10)")
    search.add_argument(
        "--mode",
        choices=["knn", "neural", "hybrid"],
        default="knn",
        help="knn: a vector from the pipeline's own model (its real-time API, else its query_model); "
        "neural: the node embeds it; hybrid: BM25 and vector, normalized",
    )
    search.add_argument("--search-pipeline", help="run the hits through this search pipeline")
    search.add_argument("--json", action="store_true", help="print the raw response")
    setup = add("setup", "create or update a pipeline's index, models and search pipelines")
    setup.add_argument("--pipeline", required=True)
    setup.add_argument("--connector-role-arn", help="on AWS: the role ML Commons connectors sign as")
    setup.add_argument("--json", action="store_true", help="print what changed as JSON")
    batch = add(
        "batch-ingest",
        "run an ML Commons _batch_ingestion request body (index_name, field_map, data_source) as is",
    )
    batch.add_argument("request", type=Path, help="the JSON body of POST /_plugins/_ml/_batch_ingestion")
    batch.add_argument("--endpoint", help="OpenSearch URL (default: the local node when the runtime is up)")
    batch.add_argument(
        "--dead-letters", type=Path, default=Path("dead-letters"), help="directory for dead letters"
    )
    batch.add_argument("--concurrency", type=int, default=2, help="bulk requests in flight")
    batch.add_argument(
        "--json", action="store_true", help="progress as JSON lines (start, one per chunk, done)"
    )
    batch.add_argument(
        "--stack",
        action="store_true",
        help="run it on the deployed stack's Distributed Map (the local runtime's when it is up, else AWS)",
    )
    batch.add_argument(
        "--pipeline", help="with --stack: the pipeline it runs under (default: the one whose index it names)"
    )
    import_osi = add(
        "import-osi",
        "an OpenSearch Ingestion pipeline using ml_inference, as an osbatch pipeline config",
        module="cli.import_osi",
    )
    # Its arguments, beside the command (standard library only, so --help stays fast).
    import_osi.add_argument("pipeline_file", type=Path, help="the OSI pipeline's YAML")
    import_osi.add_argument(
        "-o", "--output", type=Path, help="write the osbatch config here (default: stdout)"
    )
    import_osi.add_argument(
        "--json", action="store_true", help="print the config and its field report as JSON"
    )
    import_osi.add_argument(
        "--connector",
        type=Path,
        help="the ML Commons connector of the pipeline's model (JSON, or the Dev Tools _create request): "
        "where the SageMaker or Bedrock model and its settings come from",
    )
    import_osi.add_argument(
        "--model", help="the SageMaker model name or Bedrock model id, without --connector"
    )
    import_osi.add_argument("--name", help="the osbatch pipeline's name (default: the OSI pipeline's)")
    import_osi.add_argument(
        "--osi-pipeline", help="the sub-pipeline to import, when several use ml_inference"
    )
    replay = add("replay", "re-ingest a job's dead letters once their cause is fixed")
    replay.add_argument("what", help="a job id, or the s3:// URI of one dead-letter object")
    replay.add_argument("--job", help="the job of a dead-letter object (default: read from its key)")
    end_unended = add(
        "end-unended",
        "end the jobs the safety net could not end (its dead-letter queue), once the cause is fixed",
        module="cli.unended",
    )
    end_unended.add_argument(
        "--dry-run", action="store_true", help="list them (job, how its execution ended, why); end nothing"
    )
    end_unended.add_argument("--json", action="store_true", help="print each job and what happened as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = importlib.import_module("cli.commands")
    try:
        return int(getattr(importlib.import_module(args.module), args.run)(args))
    except BrokenPipeError:
        # The reader closed the pipe (`osbatch jobs | head -1`): stop quietly, without "Exception ignored"
        # when Python flushes stdout at exit (the signal module's "Note on SIGPIPE", docs.python.org).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        print("osbatch: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as error:
        code = commands.exit_code_for(error)
        if code is None:
            raise
        print(f"osbatch: error: {error}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
