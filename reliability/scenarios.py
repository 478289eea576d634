"""The scenarios, each one fault injected for real, and the row of the table it makes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reliability.accounting import Tally
from reliability.bad_input import bad_input_uploads, good
from reliability.burst import RunningJobs, first_remote_jobs
from reliability.container_faults import failure_reason, held_containers, kill_container
from reliability.harness import Harness, Upload
from reliability.network_faults import network_faults
from reliability.node_faults import TINY_WRITE_POOL, node_with, restart_node
from reliability.outage import node_outage
from reliability.sandbox_faults import faults, kill_ingest_sandboxes, set_faults


@dataclass
class Row:
    scenario: str
    fault: str
    tally: Tally
    seconds: float
    states: dict[str, str]
    notes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # what else the scenario expected and did not see

    @property
    def clean(self) -> bool:
        return self.tally.lost == 0 and self.tally.duplicated == 0 and not self.broken


def _run(harness: Harness, uploads: list[Upload]) -> tuple[Tally, float, dict[str, str], list[str]]:
    """Upload at once and wait for every job: the tally, seconds, each file's final state, the job ids."""
    harness.fresh_index()
    started_at = time.monotonic()
    started = harness.upload(uploads)
    states = harness.wait([job_id for job_id, _ in started])
    seconds = time.monotonic() - started_at
    by_file = {uri.rsplit("/", 1)[-1]: states[job_id] for job_id, uri in started}
    return harness.tally(uploads, started), seconds, by_file, [job_id for job_id, _ in started]


def bad_input(harness: Harness, scale: int) -> Row:
    tally, seconds, states, _ = _run(harness, bad_input_uploads(scale))
    fault = (
        "BOM, CRLF, invalid UTF-8, truncated last line, NaN/Infinity and wrong-dimension vectors, a 10 MB "
        "line, duplicate ids, keys with spaces and non-ASCII, an empty file, gzip as .jsonl"
    )
    return Row("a. bad input", fault, tally, seconds, states)


def rejections(harness: Harness, scale: int) -> Row:
    """Real 429s: the node restarted with one write thread and a queue of one, then four uploads whose
    parts make many chunks bulking at once."""
    uploads = [Upload(f"load-{n}.jsonl", b"\n".join(good(f"load{n}", 250 * scale)) + b"\n") for n in range(4)]
    with node_with(harness.runtime, TINY_WRITE_POOL):
        before = harness.write_rejections()
        tally, seconds, states, job_ids = _run(harness, uploads)
        rejected = harness.write_rejections() - before
    retried = sum(int(report.get("throttled_requests", 0)) for report in harness.reports(job_ids))
    fault = (
        f"write pool of 1 thread, queue 1 (restart): {rejected} es_rejected_execution_exception "
        "(the node's own thread_pool.write.rejected)"
    )
    notes = [f"the jobs' reports: {retried} bulk requests answered 429 and retried (throttled_requests)"]
    return Row("b. real 429s", fault, tally, seconds, states, notes)


def node_restart(harness: Harness, scale: int) -> Row:
    """The node stopped as the Map starts bulking, and started again; the dead letters replayed."""
    uploads = [Upload("restart.jsonl", b"\n".join(good("restart", 1000 * scale)) + b"\n")]
    started_at = time.monotonic()
    started, job_id = harness.start_ingest(uploads[0])
    restart_node(harness.runtime)  # stop, then start: about half a minute without a node here
    states = harness.wait([job_id])
    first = harness.tally(uploads, started)
    notes = [
        f"before replay: indexed {first.indexed}, dead-lettered {first.dead_lettered}, lost {first.lost}"
    ]
    if first.dead_lettered:
        notes.append(harness.replay(job_id))
    tally = harness.tally(uploads, started, replayed=True)
    seconds = time.monotonic() - started_at
    fault = "node stopped when the first ingest plan is written, started again (~30 s down); then replay"
    return Row(
        "c. node restarted mid-ingest", fault, tally, seconds, {"restart.jsonl": states[job_id]}, notes
    )


def sandbox_killed(harness: Harness, scale: int) -> Row:
    """An ingest-chunk sandbox killed by SIGKILL while it stands still at its second checkpoint save."""
    uploads = [Upload("killed.jsonl", b"\n".join(good("killed", 600 * scale)) + b"\n")]
    harness.fresh_index()
    set_faults(hold_checkpoint_save=2)
    try:
        started_at = time.monotonic()
        started = harness.upload(uploads)
        ((job_id, _),) = started
        harness.wait_until(lambda: faults()["checkpoint_saves"] >= 2, what="the held checkpoint save")
        killed = kill_ingest_sandboxes()
    finally:
        set_faults()  # the held save is refused, never applied
    states = harness.wait([job_id])
    seconds = time.monotonic() - started_at
    tally = harness.tally(uploads, started)
    fault = f"SIGKILL to the ingest-chunk sandboxes ({killed}) while one stands at a checkpoint save"
    return Row("d. sandbox killed mid-chunk", fault, tally, seconds, {"killed.jsonl": states[job_id]})


def network(harness: Harness, scale: int) -> Row:
    tally, seconds, notes = network_faults(harness, scale)
    fault = "TCP proxy: connection reset mid-request, response swallowed (timeout), slow, cut mid-stream"
    return Row("e. network faults", fault, tally, seconds, {}, notes)


def container_killed(harness: Harness, scale: int) -> Row:
    """Two uploads transforming at once; one's model container killed by SIGKILL mid-transform."""
    uploads = [
        Upload(f"{name}.jsonl", b"\n".join(good(name, 400 * scale)) + b"\n") for name in ("killed", "spared")
    ]
    harness.fresh_index()
    set_faults(hold_transform_after_batches=2)  # each job stands still after its first object (2 batches)
    try:
        started_at = time.monotonic()
        started = harness.upload(uploads)
        (killed_job, _), (spared_job, _) = started
        workers = harness.wait_for(lambda: held_containers(2), what="both transform jobs held mid-job")
        pid = kill_container(workers, killed_job)
    finally:
        set_faults()  # the held jobs go on: the killed one finds its container gone
    states = harness.wait([killed_job, spared_job])
    seconds = time.monotonic() - started_at
    tally = harness.tally(uploads, started)
    reason = failure_reason(harness.sagemaker, killed_job)
    by_file = {"killed.jsonl": states[killed_job], "spared.jsonl": states[spared_job]}
    broken = [] if reason.startswith("Failed: AlgorithmError") else [f"the killed job's transform: {reason}"]
    fault = f"SIGKILL to one transform job's model container (pid {pid}) after its first object"
    notes = [f"DescribeTransformJob of the killed job: {reason}"]
    return Row("f. model container killed", fault, tally, seconds, by_file, notes, broken)


def burst(harness: Harness, scale: int) -> Row:
    """200 tiny files at once on max_jobs_in_flight 4, the running transform jobs sampled at the service;
    then every upload's S3 event delivered again."""
    limit = harness.config.inference.max_jobs_in_flight
    uploads = [
        Upload(f"burst-{n:03d}.jsonl", b"\n".join(good(f"burst{n}", 3)) + b"\n") for n in range(200 * scale)
    ]
    harness.fresh_index()
    set_faults()  # resets the emulator's peak counts
    started_at = time.monotonic()
    with RunningJobs(harness.sagemaker) as running:
        started = harness.upload(uploads)
        job_ids = [job_id for job_id, _ in started]
        running.watch(first_remote_jobs(job_ids))
        states = harness.wait(job_ids)
    seconds = time.monotonic() - started_at
    tally = harness.tally(uploads, started)
    peak = int(faults()["peaks"].get("sagemaker", 0))
    before = harness.started(job_ids)
    accepted = harness.deliver_again([uri for _, uri in started])
    after = harness.started(job_ids)
    broken = []
    if running.most > limit or peak > limit:
        broken.append(f"{running.most} transform jobs seen running at once (emulator: {peak}), limit {limit}")
    if set(states.values()) != {"COMPLETED"}:
        broken.append(f"job states {sorted(set(states.values()))}, all COMPLETED expected")
    if after != before or before.executions != len(job_ids):
        broken.append(f"executions and transform jobs {before} before the repeated events, {after} after")
    fault = (
        f"{len(uploads)} files at once, max_jobs_in_flight {limit}: at most {running.most} transform jobs "
        f"seen running ({running.samples} samples; the emulator's own peak {peak}); {accepted} S3 events "
        f"delivered again: {after.executions - before.executions} new executions, "
        f"{after.transform_jobs - before.transform_jobs} new transform jobs"
    )
    ended = list(states.values())
    by_state = {f"{ended.count(state)} uploads": state for state in sorted(set(ended))}
    return Row("g. 200 uploads at once", fault, tally, seconds, by_state, [], broken)


def outage(harness: Harness, scale: int) -> Row:
    """The node stopped as the Map starts bulking, kept down until the job has ended; then replay."""
    found = node_outage(harness, scale)
    fault = "node stopped when the first ingest plan is written, kept down until the job ended; then replay"
    states = {"outage.jsonl": found.state}
    name = "h. node down past the job's end"
    return Row(name, fault, found.tally, found.seconds, states, found.notes, found.broken)


SCENARIOS: dict[str, Callable[[Harness, int], Row]] = {
    "a": bad_input,
    "b": rejections,
    "c": node_restart,
    "d": sandbox_killed,
    "e": network,
    "f": container_killed,
    "g": burst,
    "h": outage,
}
