"""The estimate Prepare records for a job: `osbatch plan`'s time and cost for what Prepare actually sends.

The figures are the plan's own (planning/plan.py: the dated price and throughput tables, with the pipeline's
`estimates` over them), for the records Prepare sends to the model, so the job report can set them beside
what the job came to (steps/support/actuals.py). Tokens here are the estimate (UTF-8 bytes / 4,
planning/scan.py's EstimatedTokens): Prepare does not run a tokenizer over every record; `osbatch plan`
counts them exactly where it can, and says which.
"""

from __future__ import annotations

from typing import Any

from osbatch.config import PipelineConfig
from osbatch.models import PreparedJob
from osbatch.planning.plan import RemoteJobPlan, estimate
from osbatch.planning.scan import EstimatedTokens
from osbatch.planning.tables import TableError, load_prices, load_rates


class TokenTally:
    """Sums the estimated tokens of the texts Prepare sends to the model."""

    def __init__(self) -> None:
        self._counter = EstimatedTokens()
        self.tokens = 0

    def add(self, text: str) -> None:
        self.tokens += self._counter.count(text)


def job_estimate(
    config: PipelineConfig, *, source: str, sent: int, tokens: int, jobs: list[PreparedJob]
) -> dict[str, Any]:
    """The plan's estimate for one prepared job, as the report records it; a table the pipeline's estimates
    break (it was checked at deploy, so only a missing entry) becomes the reason there is none."""
    where = f"pipeline {config.name}: estimates"
    plans = [
        RemoteJobPlan(file=source, index=job.index, parts=job.parts, records=job.records, bytes=job.bytes)
        for job in jobs
    ]
    try:
        prices = load_prices((f"{where}.prices", config.estimates.prices))
        rates = load_rates((f"{where}.throughput", config.estimates.throughput))
        time, cost = estimate(config, tokens=tokens, jobs=plans, valid=sent, prices=prices, rates=rates)
    except TableError as error:
        return {"why_not": str(error)}
    return {
        "sent_to_model": sent,
        "input_tokens": tokens,
        "input_tokens_counted_by": EstimatedTokens.how,
        "remote_jobs": len(jobs),
        "wall_seconds": time.total_seconds,
        "queue_seconds": time.queue_seconds,
        "inference_seconds": time.inference_seconds,
        "ingest_seconds": time.ingest_seconds,
        "usd": cost.usd,
        "cost_basis": cost.basis if cost.usd is not None else cost.why_not,
        "prices_of": cost.price.date.isoformat() if cost.price is not None else None,
        "price_source": cost.price.source if cost.price is not None else None,
    }
