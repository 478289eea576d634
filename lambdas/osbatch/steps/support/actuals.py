"""What a job came to, beside what the plan expected of it (Prepare's `estimate`): the job report's `actual`.

records: the report's own counts. input tokens: as the service reports them, where it does: Bedrock in each
job's `manifest.json.out` (`inputTokenCount`; Amazon Bedrock User Guide, "View the results of a batch
inference job", docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html), OpenAI in each
output line's `usage.prompt_tokens` (summed as PlanIngest joins them, steps/support/join.py). SageMaker Batch
Transform reports none: its figure is left out, with the reason, never estimated here. remote jobs and wall
time (created to finished, from the job table).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from osbatch.backends.base import BatchBackend
from osbatch.backends.bedrock import BedrockBackend
from osbatch.dal import JobTable
from osbatch.models import JobState
from osbatch.steps.support.report import JobReport

BEDROCK_TOKENS = "Bedrock manifest.json.out inputTokenCount"
OPENAI_TOKENS = "OpenAI batch output usage.prompt_tokens"


def reported_input_tokens(state: JobState, backend: BatchBackend | None) -> tuple[int | None, str]:
    """The input tokens the service billed, and where the figure comes from (or why there is none)."""
    if state.plan is not None and state.plan.input_tokens is not None:
        return state.plan.input_tokens, OPENAI_TOKENS
    if isinstance(backend, BedrockBackend) and state.remotes:
        counts = [backend.manifest(remote).get("inputTokenCount") for remote in state.remotes]
        known = [count for count in counts if isinstance(count, int)]
        if known:
            return sum(known), BEDROCK_TOKENS
        return None, "no Bedrock job wrote a manifest.json.out"
    if not state.remotes:
        return None, "no remote job ran"
    return None, "the service reports no token counts (SageMaker Batch Transform, ML Commons)"


def with_actuals(
    report: JobReport, state: JobState, *, jobs: JobTable, backend: BatchBackend | None
) -> JobReport:
    created_at = (jobs.get(state.job_id) or {}).get("created_at")
    tokens, tokens_by = reported_input_tokens(state, backend)
    actual: dict[str, Any] = {
        "records_in": report.records_in,
        "sent_to_model": state.prepared.valid if state.prepared else None,
        "indexed": report.indexed,
        "unchanged": report.unchanged,
        "dead_lettered": report.dead_lettered,
        "input_tokens": tokens,
        "input_tokens_from": tokens_by,
        "remote_jobs": len(report.remote_jobs),
        "wall_seconds": _seconds_between(created_at, report.finished_at),
    }
    return replace(report, actual=actual)


def _seconds_between(start: str | None, end: str) -> float | None:
    if not start:
        return None
    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((ended - began).total_seconds(), 1)
