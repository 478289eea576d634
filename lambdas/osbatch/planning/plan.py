"""`osbatch plan`: what a run of these files through this pipeline would send, create, take and cost, found
without submitting anything (scan.py reads as Prepare would; tables.py has the dated prices and rates).

Time: queue (per wave of max_jobs_in_flight remote jobs) + inference (tokens over the backend's rate, the
jobs of a wave in parallel) + ingest (valid records over the ingest rate). Cost: SageMaker (and ML Commons,
which runs SageMaker transform jobs) instance-hours of inference times the instance's price; Bedrock and
OpenAI input tokens times the model's batch price. Every figure names the table entries (date, source) it
rests on; a figure with no entry is left out with the reason, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from osbatch.backends.base import BatchBackend
from osbatch.chunking import Chunker
from osbatch.config import Backend, PipelineConfig
from osbatch.planning.scan import BadLines, FileScan, Tokens, scan_file
from osbatch.planning.tables import Price, Prices, Rate, Rates, TableError


class RemoteJobPlan(BaseModel):
    file: str
    index: int
    parts: int
    records: int
    bytes: int


class TimeEstimate(BaseModel):
    queue_seconds: float
    inference_seconds: float
    ingest_seconds: float
    total_seconds: float
    rates: dict[str, Rate]  # what each figure rests on, with its date and source


class CostEstimate(BaseModel):
    usd: float | None  # None: no price in the table (why_not says which)
    basis: str  # what was multiplied by what
    price: Price | None
    why_not: str | None = None


class Plan(BaseModel):
    pipeline: str
    backend: str
    files: list[str]
    bytes: int
    records: int
    valid: int
    blank_lines: int
    bad_lines: int
    bad_reasons: dict[str, int]
    bad_examples: list[dict[str, Any]]
    chunks: bool
    passages: int | None
    tokens: int
    tokens_counted_by: str
    tokens_exact: bool
    limits: dict[str, int | None]
    remote_jobs: list[RemoteJobPlan]
    time: TimeEstimate
    cost: CostEstimate
    # Incremental re-embedding (osbatch.incremental.index_check.incremental_summary, which the CLI adds):
    # whether it is on, the config's fingerprint, and (`osbatch plan --index`) what the index says; the
    # figures above count every record as sent.
    incremental: dict[str, Any] = {}


def plan_files(
    files: Iterable[tuple[str, Iterable[bytes]]],
    *,
    config: PipelineConfig,
    backend: BatchBackend,
    tokens: Tokens,
    tokens_how: str,
    tokens_exact: bool,
    chunker: Chunker | None,
    prices: Prices,
    rates: Rates,
) -> Plan:
    """files: (name, its bytes in pieces). Raises scan.NotJsonl or layout.TooManyRemoteJobs."""
    bad = BadLines()
    scans: list[FileScan] = [
        scan_file(name, pieces, config=config, backend=backend, tokens=tokens, chunker=chunker, bad=bad)
        for name, pieces in files
    ]
    jobs = [
        RemoteJobPlan(
            file=scan.name,
            index=group.index,
            parts=len(group.parts),
            records=group.records,
            bytes=group.bytes,
        )
        for scan in scans
        for group in scan.groups
    ]
    total_tokens = sum(scan.tokens for scan in scans)
    valid = sum(scan.valid for scan in scans)
    limits = backend.job_limits
    time, cost = estimate(config, tokens=total_tokens, jobs=jobs, valid=valid, prices=prices, rates=rates)
    return Plan(
        pipeline=config.name,
        backend=config.inference.backend.value,
        files=[scan.name for scan in scans],
        bytes=sum(scan.bytes for scan in scans),
        records=sum(scan.records for scan in scans),
        valid=valid,
        blank_lines=sum(scan.blank_lines for scan in scans),
        bad_lines=sum(scan.bad_lines for scan in scans),
        bad_reasons=dict(bad.reasons.most_common()),
        bad_examples=[vars(example) for example in bad.examples],
        chunks=chunker is not None,
        passages=sum(scan.passages for scan in scans) if chunker is not None else None,
        tokens=total_tokens,
        tokens_counted_by=tokens_how,
        tokens_exact=tokens_exact,
        limits={
            "max_records_per_file": min(
                backend.limits.max_records_per_file, config.inference.max_records_per_part
            ),
            "max_bytes_per_file": backend.limits.max_bytes_per_file,
            "max_records_per_job": limits.max_records_per_job,
            "max_bytes_per_job": limits.max_bytes_per_job,
            "min_records_per_job": limits.min_records_per_job,
            "max_parts_per_job": limits.max_parts_per_job,
            "max_remote_jobs": config.inference.max_remote_jobs,
            "max_jobs_in_flight": config.inference.max_jobs_in_flight,
        },
        remote_jobs=jobs,
        time=time,
        cost=cost,
    )


def estimate(
    config: PipelineConfig,
    *,
    tokens: int,
    jobs: list[RemoteJobPlan],
    valid: int,
    prices: Prices,
    rates: Rates,
) -> tuple[TimeEstimate, CostEstimate]:
    """Wall time and cost of sending `tokens` in `jobs` and ingesting `valid` records: what plan_files
    prints, and what Prepare records for the job report (planning/estimate.py)."""
    return _time(config, jobs, tokens, valid, prices, rates), _cost(config, tokens, jobs, prices, rates)


def offline_backend(config: PipelineConfig) -> BatchBackend:
    """The pipeline's backend for its limits and input lines only: it is given no client, so it can call
    nothing (input_line and the limits need none)."""
    from osbatch.backends import backend_for

    return backend_for(config, lambda _name: None, opensearch=lambda: None)


def _time(
    config: PipelineConfig, jobs: list[RemoteJobPlan], tokens: int, valid: int, prices: Prices, rates: Rates
) -> TimeEstimate:
    service = _service(config)
    queue = _rate(rates, service, "queue_seconds")
    ingest = _rate(rates, "ingest", "docs_per_second")
    per_job = _job_rate(config, prices, rates)
    in_flight = min(len(jobs), config.inference.max_jobs_in_flight) or 1
    waves = math.ceil(len(jobs) / in_flight)
    queue_seconds = queue.value * waves
    inference_seconds = tokens / per_job[0] / in_flight if per_job[0] else 0.0
    ingest_seconds = valid / ingest.value
    used = {f"{service}.queue_seconds": queue, "ingest.docs_per_second": ingest, **per_job[1]}
    return TimeEstimate(
        queue_seconds=round(queue_seconds, 1),
        inference_seconds=round(inference_seconds, 1),
        ingest_seconds=round(ingest_seconds, 1),
        total_seconds=round(queue_seconds + inference_seconds + ingest_seconds, 1),
        rates=used,
    )


def _cost(
    config: PipelineConfig, tokens: int, jobs: list[RemoteJobPlan], prices: Prices, rates: Rates
) -> CostEstimate:
    service = _service(config)
    if service == "sagemaker":
        instance_type, count = _instances(config)
        price = prices.get("sagemaker", {}).get(instance_type)
        if price is None:
            return _unpriced(f"sagemaker.{instance_type}")
        per_job, _ = _job_rate(config, prices, rates)
        # Each job's instances run for its share of the tokens; billing by the second is rounded up per job.
        hours = tokens / per_job * count / 3600 if per_job else 0.0
        return CostEstimate(
            usd=round(hours * price.usd, 4),
            basis=f"{hours:.3f} instance-hours of {count} x {instance_type} x ${price.usd}/hour (inference "
            "time only: instance start-up is not counted)",
            price=price,
        )
    model = _model(config)
    price = prices.get(service, {}).get(model)
    if price is None:
        return _unpriced(f"{service}.{model}")
    return CostEstimate(
        usd=round(tokens / 1e6 * price.usd, 4),
        basis=f"{tokens:,} input tokens x ${price.usd} per million ({model})",
        price=price,
    )


def _unpriced(entry: str) -> CostEstimate:
    return CostEstimate(
        usd=None,
        basis="",
        price=None,
        why_not=f"no price for {entry} in the price table; add it with --prices FILE "
        "(with its date and source)",
    )


def _job_rate(config: PipelineConfig, prices: Prices, rates: Rates) -> tuple[float, dict[str, Rate]]:
    """Tokens per second one remote job embeds, and the entries that says so."""
    service = _service(config)
    if service != "sagemaker":
        rate = _rate(rates, service, "tokens_per_second")
        return rate.value, {f"{service}.tokens_per_second": rate}
    instance_type, count = _instances(config)
    rate = _rate(rates, "sagemaker", "tokens_per_vcpu_second")
    price = prices.get("sagemaker", {}).get(instance_type)
    vcpus = price.vcpus if price is not None and price.vcpus else 1
    return rate.value * vcpus * count, {"sagemaker.tokens_per_vcpu_second": rate}


def _rate(rates: Rates, section: str, name: str) -> Rate:
    try:
        return rates[section][name]
    except KeyError:
        raise TableError(
            f"the throughput table has no {section}.{name}: add it with --throughput FILE"
        ) from None


def _service(config: PipelineConfig) -> str:
    """Whose throughput and prices apply: ML Commons runs SageMaker transform jobs."""
    backend = config.inference.backend
    return "sagemaker" if backend in (Backend.SAGEMAKER, Backend.ML_COMMONS) else backend.value


def _instances(config: PipelineConfig) -> tuple[str, int]:
    inference = config.inference
    settings = inference.sagemaker or (inference.ml_commons.sagemaker if inference.ml_commons else None)
    resources = settings.TransformResources if settings else {}
    return str(resources.get("InstanceType", "ml.m5.xlarge")), int(resources.get("InstanceCount", 1))


def _model(config: PipelineConfig) -> str:
    inference = config.inference
    if inference.bedrock is not None:
        return inference.bedrock.model_id
    return inference.openai.model if inference.openai is not None else ""
