"""Scenario h: the node stopped as the Map starts bulking and kept down until the job has ended.

Scenario c's outage is shorter than the chunks' bulk retries; this one outlasts them and Finalize too, whose
restore of the index settings (search/bulk_load.py) then has no node to talk to. What the scenario checks,
from outside osbatch:
- the job ends (its item terminal) while the node is down, and its execution with it;
- the report's counts add up (records_in = indexed + unchanged + dead_lettered, nothing unaccounted);
- no record is both indexed and dead-lettered, or dead-lettered twice, before any replay;
- `osbatch replay` indexes the dead letters once the node is back;
- the index's refresh_interval and replicas, relaxed for the load, are restored by the time the next job
  into the index has ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from local.aws import session
from local.runtime import AWS_URL
from osbatch.dal.keys import lease_key
from osbatch.ingest.node_gone import NOT_RETRIED
from osbatch.models import JobStateName
from osbatch.search.bulk_load import LOADING, REFRESH, REPLICAS
from reliability.accounting import Tally
from reliability.bad_input import good
from reliability.harness import Harness, Upload
from reliability.node_faults import start_node, stop_node

# How long the node may stay down waiting for the job to end: the chunks' bulk retries (about two minutes,
# sink.bulk.max_retries) and Finalize and FailJob take a few minutes at most; past this the job is stuck.
OUTAGE_LIMIT_SECONDS = 600.0
# After the node is back, how long a job that did not end while it was down may take to end.
LATE_END_SECONDS = 300.0
RUNNING = "RUNNING"


@dataclass(frozen=True)
class Ending:
    """What was seen when the wait with the node down stopped."""

    job_state: str  # the job item's state (a terminal one, or where it stood)
    execution: str  # the execution's status (RUNNING, SUCCEEDED, FAILED, ...)
    seconds: float  # how long the node was down


@dataclass
class Outcome:
    tally: Tally
    seconds: float
    state: str
    notes: list[str]
    broken: list[str]


def node_outage(harness: Harness, scale: int) -> Outcome:
    uploads = [Upload("outage.jsonl", b"\n".join(good("outage", 1000 * scale)) + b"\n")]
    started_at = time.monotonic()
    started, job_id = harness.start_ingest(uploads[0])
    stop_node(harness.runtime)
    try:
        ending = _wait_with_node_down(harness, job_id)
    finally:
        start_node(harness.runtime)
    notes = [
        f"node down {ending.seconds:.0f} s: the job item {ending.job_state}, "
        f"the execution {ending.execution} when it was started again"
    ]
    broken: list[str] = []
    if not JobStateName(ending.job_state).terminal:
        broken.append(f"the job had not ended after {ending.seconds:.0f} s with the node down")
    state = harness.wait([job_id], timeout=LATE_END_SECONDS)[job_id]
    notes.append(f"index settings once the node was back: {index_settings(harness)}")
    notes.append(f"bulk-load lease: {lease(harness)}")
    report = _report(harness, job_id)
    notes.append(f"the job's report: {_counts(report)}")
    if report is None or not adds_up(report):
        broken.append(f"the report's counts do not add up: {_counts(report)}")
    first = harness.tally(uploads, started)
    notes.append(
        f"before replay: indexed {first.indexed}, dead-lettered {first.dead_lettered}, lost {first.lost}, "
        f"duplicated {first.duplicated}"
    )
    notes.append(_retries_spent(harness, job_id))
    if first.duplicated:
        broken.append(f"{first.duplicated} records duplicated before replay: {first.duplicated_examples[:3]}")
    if first.dead_lettered:
        notes.append(harness.replay(job_id))
    notes.append(f"index settings after the replay: {index_settings(harness)}")
    tally = harness.tally(uploads, started, replayed=True)
    seconds = time.monotonic() - started_at
    next_state = _next_job(harness)
    settings = index_settings(harness)
    notes.append(f"the next job into the index: {next_state}; index settings after it: {settings}")
    if relaxed(settings):
        broken.append(f"the index is left with its load settings after the next job: {settings}")
    return Outcome(tally, seconds, state, notes, broken)


def _wait_with_node_down(harness: Harness, job_id: str) -> Ending:
    """Until the job item is terminal and its execution no longer runs, or OUTAGE_LIMIT_SECONDS."""
    down_at = time.monotonic()
    job_state, execution = "", RUNNING
    while time.monotonic() - down_at < OUTAGE_LIMIT_SECONDS:
        job_state, execution = _job_state(harness, job_id), execution_status(harness, job_id)
        if JobStateName(job_state).terminal and execution != RUNNING:
            break
        time.sleep(1.0)
    return Ending(job_state, execution, time.monotonic() - down_at)


def _job_state(harness: Harness, job_id: str) -> str:
    job = harness.jobs.get(job_id)
    return str(job["state"]) if job else JobStateName.CREATED.value


def execution_status(harness: Harness, job_id: str) -> str:
    """The status of the job's execution (named after the job, in the stack's state machine)."""
    machine = harness.stack.outputs["StateMachineArn"]
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{job_id}"
    sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
    return str(sfn.describe_execution(executionArn=arn)["status"])


def index_settings(harness: Harness) -> dict[str, Any]:
    """The index's own refresh_interval and number_of_replicas (None: left at the default)."""
    answer = harness.client.indices.get_settings(index=harness.index)
    settings = next(iter(answer.values()))["settings"]["index"]
    return {REFRESH: settings.get(REFRESH), REPLICAS: settings.get(REPLICAS)}


def relaxed(settings: dict[str, Any]) -> bool:
    """Either setting still as PlanIngest set it for the load."""
    return any(str(settings.get(name)) == str(value) for name, value in LOADING.items())


def lease(harness: Harness) -> dict[str, Any]:
    """The index's bulk-load lease item in the job table: its loaders and the settings saved to restore."""
    table = session().resource("dynamodb", endpoint_url=AWS_URL).Table(harness.stack.outputs["JobTableName"])
    item: dict[str, Any] = table.get_item(Key=lease_key(harness.index), ConsistentRead=True).get("Item", {})
    return {"loaders": sorted(item.get("loaders", set())), "saved": item.get("saved")}


def _report(harness: Harness, job_id: str) -> dict[str, Any] | None:
    try:
        (report,) = harness.reports([job_id])
    except Exception:  # no report written: the counts cannot add up
        return None
    return report


def _counts(report: dict[str, Any] | None) -> str:
    if report is None:
        return "no report"
    names = ("state", "records_in", "indexed", "dead_lettered", "unchanged", "unaccounted")
    return ", ".join(f"{name} {report.get(name)}" for name in names)


def adds_up(report: dict[str, Any]) -> bool:
    settled = int(report["indexed"]) + int(report["dead_lettered"]) + int(report.get("unchanged", 0))
    return settled == int(report["records_in"]) and int(report["unaccounted"]) == 0


def _retries_spent(harness: Harness, job_id: str) -> str:
    """How the dead letters' bulk requests ended: retried in full, or tried once with the node gone."""
    letters = harness.dead_letters([job_id])
    once = sum(1 for letter in letters if str(letter.get("reason", "")).endswith(f"({NOT_RETRIED})"))
    full = sum(1 for letter in letters if "(gave up after" in str(letter.get("reason", "")))
    return f"dead letters: {full} after their request's full retries, {once} tried once (the node gone)"


def _next_job(harness: Harness) -> str:
    """One small upload into the same index with the node up: its state."""
    after = [Upload("after-outage.jsonl", b"\n".join(good("after", 20)) + b"\n")]
    ((job_id, _),) = harness.upload(after)
    return harness.wait([job_id])[job_id]
