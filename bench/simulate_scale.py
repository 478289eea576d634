"""A billion records through the deployed design, simulated: where the time goes and what breaks first.

A discrete-event simulation of one pipeline on the SageMaker backend, from 100 uploads of 1e7 records
(uploaded at once) to the last document indexed, on an OpenSearch domain of N data nodes:

- uploads: Prepare cuts each into parts of `max_records_per_part` and remote jobs of SageMaker's
  JobLimits (1,000,000 records); StartJob takes one of `max_jobs_in_flight` slots per upload (given back
  by the PollJob that sees its last transform job ended), and a refused StartJob parks in WaitForSlot
  until the slot's release wakes the oldest waiting upload (steps/support/slot_wake.py) or its 10-minute
  fallback timeout passes, until `slot_wait_window`, then fails (SlotWaitPastWindow), as
  steps/start_job.py does. Scenarios marked `no-wake` run the slot wait as it was before the wake-up: the
  state machine's slot-wait retrier (30 s doubling to 10 min). Scenarios marked `before-fixes` run the
  design as it was before that: the slot held until Finalize, the wait counted against `retry_time_window`
  (ThrottledPastWindow), ingest-chunk's reservation fixed at 40 and NoWriterSlot not retried;
- transform jobs: `instances_per_job` ml.m4.xlarge each, at the seed's throughput per instance;
- the workflow's loop per execution (infra/workflow.py): WaitForJob (ended by the completion event or by
  its timeout, the poll interval growing 60 s x 1.5 to 600 s), PollJob, PartFinished?, PlanIngest of the
  ready remote jobs' output (plan_chunks, 64 MiB chunks), the Distributed Map (MaxConcurrency 8);
- ingest-chunk Lambdas: reserved concurrency as the stack sizes it (infra/concurrency.py; a throttled Map
  child is retried 10 s doubling to 300 s, 40 attempts, 10 before the fixes, full jitter, then fails the
  Map); the per-domain writer lease (dal/domain_writers.py: slot polling 0.5 s doubling to 10 s, up to a
  third of the 900 s timeout, then NoWriterSlot, which the IngestChunk task retries 30 s doubling to 300 s,
  20 attempts, full jitter; the limit +1 per `limit` requests taken without a 429 since it last changed,
  halved at a 429 unless halved since that request went out, between 1 and 64; before each attempt a
  chunk whose lease is not among the `limit` oldest pauses, polling like the lease, until two thirds of
  its 900 s have passed, then NoWriterSlot and a retry of its unsettled lines; `limit-per-chunk` and
  `before-fixes` scenarios halve per chunk that saw a 429 and add one per chunk that saw none, at its
  end, and never pause); bulk requests of 8 MiB, 2 in flight per chunk, rejected items retried with full
  jitter (0.5 s doubling to 30 s, 10 retries, then dead-lettered) (ingest/bulk.py, BulkConfig);
- the cluster: one primary shard per data node, documents routed evenly, so each bulk request puts one
  shard task of docs/N on every node. Each node has a write pool of `cores` threads and a queue of
  `queue_size` tasks (OpenSearch "Thread pool settings", docs.opensearch.org .../configuring-opensearch/
  thread-pool-settings/: write, fixed, size = allocated processors, queue 10000); a task finding the
  queue full is rejected (429, es_rejected_execution_exception). All nodes see identical arrivals and
  service times, so one representative node is simulated exactly under that assumption.

Why a heapq event loop and not simpy: the model is a handful of callback-driven resources (a thread
pool, a lease table, a Lambda pool), about four events per bulk request; a 40-line loop runs ~1e6 bulk
requests per scenario in seconds without generator-per-process overhead or a new dependency.

Calibration figures, measured on this project's 2-core development machine (AMD EPYC, avx2 and
avx512f/bw/dq/vl/vnni; docs/performance.md, bench/ingest.py --node, 200,000 records, 2026-12-01):
- NODE_MS_PER_DOC 1.0: node CPU per document, lucene HNSW 384-dim, 0 replicas (0.89-1.13 ms measured);
- CLIENT_US_PER_DOC 44: osbatch's client CPU per document (42-46 us measured), scaled to the ingest
  function's CPU share (1,024 MB of Lambda's 1,769 MB per vCPU: AWS Lambda "Configure Lambda function
  memory", docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html);
- OUTPUT_LINE_BYTES 8.6 KiB (SageMaker output line with a 384-dim vector) and MAPPED_DOC_BYTES 7.7 KB
  (the bulk document), the sizes of bench/ingest.py's lines.
Seed figure: 1e9 records embedded in 14 h on 100 ml.m4.xlarge, i.e. 198 records/s per instance.
Assumptions (not measured): INPUT_RECORD_BYTES 1 KiB per input record; Prepare's cost per record that of
the ingest path (CLIENT_US_PER_DOC, scaled); 50 ms per bulk round trip besides the node's work; short
functions' durations (SHORT_STEP_SECONDS); +-5% spread of transform job durations; the per-document node
cost stays at the measured 200k-document figure as shards grow to 1e8+ documents (HNSW insertion grows
with the graph, so this is optimistic); no indexing-pressure (memory) rejections.

    .venv/bin/python bench/simulate_scale.py [--quick] [--nodes 3 6 12 24]

--quick simulates 1e7 records (10 uploads of 1e6) instead of 1e9 (100 of 1e7).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from infra.history import (  # noqa: E402
    EVENTS_PER_CALLBACK,
    EVENTS_PER_RETRY,
    EVENTS_PER_STATE,
    EXECUTION_EVENTS,
    HISTORY_LIMIT,
)
from osbatch.config import BulkConfig, PollingConfig, next_wait_seconds  # noqa: E402
from osbatch.dal.domain_writers import SLOT_POLL, LimitSettings  # noqa: E402
from osbatch.ingest.readers import plan_chunks  # noqa: E402
from osbatch.steps.plan_ingest import DEFAULT_CHUNK_BYTES  # noqa: E402

NODE_MS_PER_DOC = 1.0
CLIENT_US_PER_DOC = 44.0
LAMBDA_MB_PER_VCPU = 1769
OUTPUT_LINE_BYTES = int(8.6 * 1024)
MAPPED_DOC_BYTES = 7700
INPUT_RECORD_BYTES = 1024
SEED_RECORDS, SEED_HOURS, SEED_INSTANCES = 1e9, 14.0, 100
RECORDS_PER_INSTANCE_SECOND = SEED_RECORDS / (SEED_HOURS * 3600 * SEED_INSTANCES)
BULK_ROUND_TRIP_SECONDS = 0.05
DURATION_SPREAD = 0.05
# Assumed durations of the short steps (seconds): a handful of DynamoDB/S3/API calls each.
SHORT_STEP_SECONDS = {
    "submit": 0.1, "start-job": 0.5, "park-job": 0.2, "wake-job": 0.1, "poll-job": 0.3,
    "plan-ingest": 2.0, "finalize": 3.0, "fail-job": 1.0,
}  # fmt: skip
# Prices, us-east-1, read 2026-12-06. AWS Lambda pricing (aws.amazon.com/lambda/pricing/): Arm, the
# functions' architecture (infra/functions.py), $0.0000133334 per GB-second, $0.20 per 1M requests.
# AWS Step Functions pricing (aws.amazon.com/step-functions/pricing/): Standard, $0.025 per 1,000 state
# transitions, retries included.
NO_WRITER_SLOT = "NoWriterSlot fails the Map child"
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1e6
SFN_PER_TRANSITION = 0.025 / 1000


@dataclass(frozen=True)
class Retrier:
    """A Step Functions Retry rule: interval doubling to a cap, `attempts` retries, full jitter or none."""

    interval: float
    cap: float
    attempts: int
    jitter: bool = True

    def delay(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.interval * 2**retry)
        return ceiling * rng.random() if self.jitter else ceiling


LEGACY_INGEST_CONCURRENCY = 40  # ingest-chunk's fixed reservation before infra/concurrency.py sized it
LEGACY_CHUNK_THROTTLED = Retrier(10, 300, 10)  # the Map child's throttling retrier before it got its own


@dataclass(frozen=True)
class Design:
    """What the deployed stack fixes; deployed_design() reads it from infra/ and the product's config."""

    memory_mb: dict[str, int]
    reservation: Callable[[int], int]  # ingest-chunk's reserved concurrency for max_jobs_in_flight slots
    map_concurrency: int
    lambda_throttled: Retrier  # Lambda.TooManyRequestsException on the Map's IngestChunk task
    start_throttled: Retrier  # BackendThrottled on StartJob, and JobSlotsFull without the wake (no jitter)
    no_writer_slot: Retrier  # NoWriterSlot on the Map's IngestChunk task
    ingest_timeout: float
    slot_wait_hours: float = 48.0
    slot_wait_fallback: float = 600.0  # WaitForSlot's timeout
    records_per_part: int = 100_000
    records_per_job: int = 1_000_000
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    bulk: BulkConfig = field(default_factory=BulkConfig)
    writers: LimitSettings = field(default_factory=LimitSettings)
    polling: PollingConfig = field(default_factory=PollingConfig)


@dataclass(frozen=True)
class Scenario:
    files: int
    records_per_file: int
    nodes: int
    cores_per_node: int = 8
    queue_size: int = 10_000
    jobs_in_flight: int = 10
    instances_per_job: int = 1
    seed: int = 1
    # The design before the four fixes (docs/scale-simulation.md): the slot held until Finalize and its
    # wait counted against retry_time_window (`retry_window_hours`), ingest-chunk reserving 40, and
    # NoWriterSlot failing the Map child.
    before_fixes: bool = False
    # The slot wait as it was before a release woke the oldest waiting upload: StartJob's retrier only.
    slot_wake: bool = True
    # The writer limit reacting within running chunks (halved at a 429, newest writers paused); without it,
    # as before 2026-12-07, it halved when a chunk that saw 429s ended and no running chunk paused.
    limit_in_chunk: bool = True
    retry_window_hours: float = 48.0
    ingest_concurrency: int | None = None  # instead of the stack's sizing (tests)


def deployed_design() -> Design:
    """The stack's own figures: imports infra/ (aws-cdk), so only the bench's main calls it."""
    from infra.concurrency import ingest_chunk_reservation
    from infra.functions import FUNCTIONS
    from infra.pipelines import load_pipelines
    from infra.workflow import (
        CHUNK_THROTTLED,
        MAP_MAX_CONCURRENCY,
        NO_WRITER_SLOT,
        SLOT_WAIT_FALLBACK_SECONDS,
        THROTTLE_INTERVAL_SECONDS,
        THROTTLE_MAX_DELAY_SECONDS,
    )
    from osbatch.backends.sagemaker import SageMakerBackend
    from osbatch.config import InferenceConfig, parse_duration

    ingest = FUNCTIONS["ingest-chunk"]
    inference = InferenceConfig.model_fields
    (example,) = load_pipelines("pipelines/python-docs.yaml", ROOT)

    def reservation(slots: int) -> int:
        """What the stack reserves for the example pipeline with `slots` jobs in flight."""
        sized = example.inference.model_copy(update={"max_jobs_in_flight": slots})
        return ingest_chunk_reservation([example.model_copy(update={"inference": sized})])

    return Design(
        memory_mb={name: spec.memory_mb for name, spec in FUNCTIONS.items()},
        reservation=reservation,
        map_concurrency=MAP_MAX_CONCURRENCY,
        lambda_throttled=Retrier(
            CHUNK_THROTTLED.interval_seconds, CHUNK_THROTTLED.max_delay_seconds, CHUNK_THROTTLED.attempts
        ),
        start_throttled=Retrier(THROTTLE_INTERVAL_SECONDS, THROTTLE_MAX_DELAY_SECONDS, 0, jitter=False),
        no_writer_slot=Retrier(
            NO_WRITER_SLOT.interval_seconds, NO_WRITER_SLOT.max_delay_seconds, NO_WRITER_SLOT.attempts
        ),
        ingest_timeout=ingest.timeout_seconds,
        slot_wait_hours=parse_duration(str(inference["slot_wait_window"].default)) / 3600,
        slot_wait_fallback=SLOT_WAIT_FALLBACK_SECONDS,
        records_per_part=int(inference["max_records_per_part"].default),
        records_per_job=SageMakerBackend.job_limits.max_records_per_job,
    )


class Loop:
    """The event loop: callbacks ordered by time, ties by scheduling order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self.now + delay, self._seq, action, args))

    def run(self) -> None:
        while self._heap:
            self.now, _, action, args = heapq.heappop(self._heap)
            action(*args)


class Node:
    """One data node's write pool: `threads` tasks at once, `queue_size` waiting, the rest rejected."""

    def __init__(self, loop: Loop, threads: int, queue_size: int, ms_per_doc: float) -> None:
        self._loop, self._threads, self._queue_size = loop, threads, queue_size
        self._seconds_per_doc = ms_per_doc / 1000
        self._busy = 0
        self._queue: deque[tuple[float, Callable[[], None]]] = deque()
        self.peak_tasks = 0

    def submit(self, docs: float, done: Callable[[], None]) -> bool:
        if self._busy < self._threads:
            self._start(docs, done)
        elif len(self._queue) < self._queue_size:
            self._queue.append((docs, done))
        else:
            return False
        self.peak_tasks = max(self.peak_tasks, self._busy + len(self._queue))
        return True

    def _start(self, docs: float, done: Callable[[], None]) -> None:
        self._busy += 1
        self._loop.at(docs * self._seconds_per_doc, self._finish, done)

    def _finish(self, done: Callable[[], None]) -> None:
        self._busy -= 1
        if self._queue:
            self._start(*self._queue.popleft())
        done()


@dataclass
class Totals:
    records: int = 0
    indexed: int = 0
    dead_lettered: int = 0
    chunks_done: set[tuple[int, int]] = field(default_factory=set)
    duplicate_chunks: int = 0
    attempts: int = 0
    rejected: int = 0
    peak_writers: int = 0
    paused_out: int = 0  # chunk attempts that paused past their time (NoWriterSlot, retried)
    peak_limit: int = 0
    lambda_gb_seconds: float = 0.0
    lambda_requests: int = 0
    transitions: int = 0
    histories: list[int] = field(default_factory=list)
    child_history_max: int = 0
    failed_uploads: dict[str, int] = field(default_factory=dict)
    last_inference_end: float = 0.0
    last_indexed: float = 0.0
    throttled_children: int = 0
    peak_node_tasks: int = 0
    # Seconds slots stood free while an upload waited for one: from each release to the next StartJob that
    # took a slot, summed over the releases that had a waiting upload.
    slot_idle_seconds: float = 0.0
    slot_handovers: int = 0

    def fail(self, reason: str) -> None:
        self.failed_uploads[reason] = self.failed_uploads.get(reason, 0) + 1


class Simulation:
    def __init__(self, design: Design, scenario: Scenario) -> None:
        self.d, self.s = design, scenario
        self.loop = Loop()
        self.rng = random.Random(scenario.seed)
        self.node = Node(self.loop, scenario.cores_per_node, scenario.queue_size, NODE_MS_PER_DOC)
        self.t = Totals(records=scenario.files * scenario.records_per_file)
        self.limit = design.writers.initial
        self.leases: dict[tuple[int, int], None] = {}  # in the order they were taken: the oldest first
        self.halved_at = self.changed_at = -math.inf
        self.clean_requests = 0
        self.reacts_in_chunk = scenario.limit_in_chunk and not scenario.before_fixes
        self.ingest_running = 0
        self.slots_held = 0
        self.tickets: deque[int] = deque()
        self.executions: dict[int, Execution] = {}
        self.releases: deque[float] = deque()  # when slots were given back with uploads waiting
        self.ingest_concurrency = scenario.ingest_concurrency or (
            LEGACY_INGEST_CONCURRENCY
            if scenario.before_fixes
            else design.reservation(scenario.jobs_in_flight)
        )
        self.wait_window_hours = (
            scenario.retry_window_hours if scenario.before_fixes else design.slot_wait_hours
        )
        self.docs_per_request = max(1, design.bulk.max_bytes // MAPPED_DOC_BYTES)
        self.client_seconds_per_doc = (
            CLIENT_US_PER_DOC / 1e6 * LAMBDA_MB_PER_VCPU / design.memory_mb["ingest-chunk"]
        )

    def run(self) -> Totals:
        for upload in range(self.s.files):
            self.executions[upload] = Execution(self, upload)
            self.executions[upload].start()
        self.loop.run()
        self.t.peak_node_tasks = self.node.peak_tasks
        return self.t

    def invoke(self, function: str, seconds: float) -> None:
        """Bill one Lambda invocation."""
        self.t.lambda_requests += 1
        self.t.lambda_gb_seconds += self.d.memory_mb[function] / 1024 * seconds


class Execution:
    """One upload's Standard execution: its states, history events and transitions."""

    def __init__(self, sim: Simulation, upload: int) -> None:
        self.sim, self.upload = sim, upload
        self.events = EXECUTION_EVENTS
        self.transitions = 0
        self.remotes: list[dict[str, Any]] = []
        self.ready: list[int] = []  # remote jobs ended, output not yet planned
        self.pending_wake = False
        self.parked = False
        self.wait_seconds = sim.d.polling.interval_seconds
        self.wait_token = 0
        self.failed = False
        self.first_throttled: float | None = None
        self.slot_parked = False  # in WaitForSlot
        self.slot_token = 0
        self.slot_woken = False  # a release noted before the park (steps/support/slot_wake.py)
        self.chunks_planned = 0
        self.slot_returned = False
        self.indexed = 0  # documents this upload's chunks indexed, and dead-lettered
        self.dead_lettered = 0

    def state(self, kind: str, *, retries: int = 0, callback: bool = False) -> None:
        self.events += (
            EVENTS_PER_STATE[kind] + EVENTS_PER_RETRY * retries + (EVENTS_PER_CALLBACK if callback else 0)
        )
        self.transitions += 1 + retries

    def task(self, function: str, seconds: float | None = None) -> float:
        seconds = SHORT_STEP_SECONDS[function] if seconds is None else seconds
        self.state("Task")
        self.sim.invoke(function, seconds)
        return seconds

    def start(self) -> None:
        sim = self.sim
        sim.invoke("submit", SHORT_STEP_SECONDS["submit"])
        self.state("Choice")  # BatchIngest?
        records = sim.s.records_per_file
        prepare_seconds = (
            records
            * sim.client_seconds_per_doc
            * sim.d.memory_mb["ingest-chunk"]
            / sim.d.memory_mb["prepare"]
        )
        if prepare_seconds > sim.d.ingest_timeout:
            sim.t.fail("Prepare past its 900 s timeout")
            return self.end(failed=True)
        self.task("prepare", prepare_seconds)
        self.state("Choice")  # HasRecords?
        sim.tickets.append(self.upload)
        sim.loop.at(prepare_seconds, self.start_job, 0)

    def start_job(self, retry: int) -> None:
        sim = self.sim
        if sim.slots_held < sim.s.jobs_in_flight and sim.tickets[0] == self.upload:
            sim.tickets.popleft()
            sim.slots_held += 1
            if sim.releases:
                sim.t.slot_idle_seconds += sim.loop.now - sim.releases.popleft()
                sim.t.slot_handovers += 1
            self.task("start-job")
            self.events += EVENTS_PER_RETRY * retry
            self.transitions += retry
            return self.submit_remote_jobs()
        sim.invoke("start-job", SHORT_STEP_SECONDS["start-job"])
        self.first_throttled = sim.loop.now if self.first_throttled is None else self.first_throttled
        if sim.loop.now - self.first_throttled >= sim.wait_window_hours * 3600:
            sim.tickets.remove(self.upload)
            self.task("start-job")
            self.events += EVENTS_PER_RETRY * retry
            self.transitions += retry
            sim.t.fail(
                "ThrottledPastWindow waiting for a slot" if sim.s.before_fixes else "SlotWaitPastWindow"
            )
            return self.end(failed=True)
        if not sim.s.slot_wake or sim.s.before_fixes:
            return sim.loop.at(sim.d.start_throttled.delay(retry, sim.rng), self.start_job, retry + 1)
        # StartJob failed with JobSlotsFull, caught to WaitForSlot (a callback Task invoking park-job)
        self.task("start-job")
        self.state("Task", callback=True)
        sim.invoke("park-job", SHORT_STEP_SECONDS["park-job"])
        if self.slot_woken:
            self.slot_woken = False
            return sim.loop.at(0.0, self.start_job, 0)
        self.slot_parked = True
        self.slot_token += 1
        sim.loop.at(sim.d.slot_wait_fallback, self.slot_wait_ended, self.slot_token)

    def slot_wait_ended(self, token: int) -> None:
        """WaitForSlot's fallback timeout: StartJob tries again."""
        if token == self.slot_token and self.slot_parked:
            self.slot_parked = False
            self.start_job(0)

    def wake_for_slot(self) -> None:
        """A release's wake-up: the parked task resumes at once, or its park will."""
        if self.slot_parked:
            self.slot_parked = False
            self.slot_token += 1
            self.sim.loop.at(0.0, self.start_job, 0)
        else:
            self.slot_woken = True

    def submit_remote_jobs(self) -> None:
        sim = self.sim
        records, index = sim.s.records_per_file, 0
        while records > 0:
            job_records = min(records, sim.d.records_per_job)
            records -= job_records
            rate = RECORDS_PER_INSTANCE_SECOND * sim.s.instances_per_job
            spread = 1 + DURATION_SPREAD * (2 * sim.rng.random() - 1)
            self.remotes.append({"records": job_records})
            sim.loop.at(job_records / rate * spread, self.remote_ended, index)
            index += 1
        self.park()

    def remote_ended(self, index: int) -> None:
        sim = self.sim
        if self.failed:
            return  # FailJob stopped it
        sim.t.last_inference_end = max(sim.t.last_inference_end, sim.loop.now)
        sim.invoke("wake-job", SHORT_STEP_SECONDS["wake-job"])
        self.remotes[index]["ended"] = True
        if not sim.s.before_fixes and all(r.get("ended") for r in self.remotes):
            self.give_back_slot()
        if self.parked:
            self.parked = False
            self.wait_token += 1
            self.poll()
        else:
            self.pending_wake = True

    def park(self) -> None:
        """WaitForJob: a callback Task invoking park-job; a finish recorded meanwhile resumes it at once."""
        self.state("Task", callback=True)
        self.sim.invoke("park-job", SHORT_STEP_SECONDS["park-job"])
        if self.pending_wake:
            self.pending_wake = False
            return self.poll()
        self.parked = True
        self.wait_token += 1
        self.sim.loop.at(self.wait_seconds, self.wait_timeout, self.wait_token)

    def wait_timeout(self, token: int) -> None:
        if token == self.wait_token and self.parked:
            self.parked = False
            self.poll()

    def poll(self) -> None:
        self.task("poll-job", SHORT_STEP_SECONDS["poll-job"])
        self.wait_seconds = next_wait_seconds(self.wait_seconds, self.sim.d.polling)
        self.state("Choice")  # JobDone?
        self.state("Choice")  # PartFinished?
        self.ready = [
            i for i, remote in enumerate(self.remotes) if remote.get("ended") and not remote.get("planned")
        ]
        if self.ready:
            return self.plan_ingest()
        if all(remote.get("ended") for remote in self.remotes):
            return self.finalize()
        self.park()

    def plan_ingest(self) -> None:
        sim = self.sim
        seconds = self.task("plan-ingest")
        items: list[tuple[int, int]] = []  # (chunk number, lines)
        for index in self.ready:
            self.remotes[index]["planned"] = True
            records = self.remotes[index]["records"]
            parts = [
                min(sim.d.records_per_part, records - s) for s in range(0, records, sim.d.records_per_part)
            ]
            sizes = [(f"{index}/{p}", n * OUTPUT_LINE_BYTES) for p, n in enumerate(parts)]
            for chunk in plan_chunks(sizes, sim.d.chunk_bytes):
                lines = _lines_starting_in(chunk["start"], chunk["end"], OUTPUT_LINE_BYTES)
                items.append((self.chunks_planned, lines))
                self.chunks_planned += 1
        self.state("Map")
        sim.loop.at(seconds, MapRun(self, items).start)

    def after_map(self, failed: str | None) -> None:
        if failed:
            self.sim.t.fail(failed)
            return self.end(failed=True)
        self.state("Choice")  # PartFinished?
        if all(remote.get("ended") for remote in self.remotes) and all(
            r.get("planned") for r in self.remotes
        ):
            return self.finalize()
        self.park()

    def give_back_slot(self) -> None:
        if self.remotes and not self.slot_returned:
            self.slot_returned = True
            sim = self.sim
            sim.slots_held -= 1  # Finalize and FailJob give the upload's slot back
            if sim.tickets:
                sim.releases.append(sim.loop.now)
            if sim.s.slot_wake and not sim.s.before_fixes:
                # ... and wake the oldest waiting uploads, as many as there are free slots
                for upload in list(sim.tickets)[: sim.s.jobs_in_flight - sim.slots_held]:
                    sim.executions[upload].wake_for_slot()

    def finalize(self) -> None:
        self.task("finalize")
        self.end(failed=False)

    def end(self, *, failed: bool) -> None:
        sim = self.sim
        if failed:
            self.task("fail-job")
            self.state("Fail")
            self.failed = True
            lost = sim.s.records_per_file - self.indexed - self.dead_lettered
            sim.t.dead_lettered += lost  # FailJob dead-letters what no chunk indexed (steps/fail_job.py)
        self.give_back_slot()
        sim.t.histories.append(self.events)
        sim.t.transitions += self.transitions


class MapRun:
    """The Distributed Map: up to map_concurrency child executions, each one ingest-chunk invocation."""

    def __init__(self, execution: Execution, items: list[tuple[int, int]]) -> None:
        self.ex, self.sim = execution, execution.sim
        self.items = deque(items)
        self.running = 0
        self.failure: str | None = None

    def start(self) -> None:
        self.fill()
        if not self.running:
            self.ex.after_map(None)

    def fill(self) -> None:
        while self.items and self.running < self.sim.d.map_concurrency and not self.failure:
            number, lines = self.items.popleft()
            self.running += 1
            self.child(number, lines, 0)

    def child(self, number: int, lines: int, retry: int) -> None:
        sim = self.sim
        if sim.ingest_running >= sim.ingest_concurrency:  # Lambda.TooManyRequestsException
            sim.t.throttled_children += 1
            throttled = LEGACY_CHUNK_THROTTLED if sim.s.before_fixes else sim.d.lambda_throttled
            if retry >= throttled.attempts:
                return self.child_done(number, retry, "Lambda throttled past the Map child's retries")
            sim.loop.at(throttled.delay(retry, sim.rng), self.child, number, lines, retry + 1)
            return
        sim.ingest_running += 1
        ChunkRun(self, number, lines, retry).start()

    def child_done(self, number: int, retries: int, failure: str | None) -> None:
        sim = self.sim
        child_events = EXECUTION_EVENTS + EVENTS_PER_STATE["Task"] + EVENTS_PER_RETRY * retries
        sim.t.child_history_max = max(sim.t.child_history_max, child_events)
        sim.t.transitions += 1 + retries
        self.running -= 1
        if failure and not self.failure:
            self.failure = failure
        self.fill()
        if not self.running and (not self.items or self.failure):
            self.ex.after_map(self.failure)


class ChunkRun:
    """One ingest-chunk invocation: writer lease, then the bulk requests, 2 in flight, settled in order."""

    def __init__(self, map_run: MapRun, number: int, lines: int, retries: int) -> None:
        self.map, self.sim = map_run, map_run.sim
        self.number, self.lines, self.retries = number, lines, retries
        self.key = (map_run.ex.upload, number)
        self.started = self.sim.loop.now
        self.throttled = False
        self.abandoned = False  # gave up paused: what it still had in flight is redone by its retry
        self.pause_deadline = self.started + self.sim.d.ingest_timeout * 2 / 3
        self.unsent = lines
        self.in_flight: deque[Request] = deque()
        self.building = False

    def start(self) -> None:
        self.acquire(0, self.sim.loop.now + self.sim.d.ingest_timeout / 3)

    def acquire(self, poll: int, deadline: float) -> None:
        sim = self.sim
        if len(sim.leases) < sim.limit:
            sim.leases[self.key] = None
            sim.t.peak_writers = max(sim.t.peak_writers, len(sim.leases))
            return self.build()
        wait = SLOT_POLL.delay(poll, sim.rng.random)
        if sim.loop.now + wait >= deadline:
            sim.loop.at(deadline - sim.loop.now, self.finish, NO_WRITER_SLOT)
            return
        sim.loop.at(wait, self.acquire, poll + 1, deadline)

    def build(self) -> None:
        """Cut the next request (client CPU), then send it once fewer than `concurrency` are in flight."""
        if not self.unsent:
            if not self.in_flight:
                self.release()
            return
        docs = min(self.unsent, self.sim.docs_per_request)
        self.unsent -= docs
        self.building = True
        self.sim.loop.at(docs * self.sim.client_seconds_per_doc, self.built, docs)

    def built(self, docs: int) -> None:
        self.building = False
        request = Request(self, docs)
        self.in_flight.append(request)
        request.send(0)
        if len(self.in_flight) < self.sim.d.bulk.concurrency:
            self.build()

    def settled(self) -> None:
        # The oldest is awaited first: a settled request behind an unsettled one keeps its place.
        while self.in_flight and self.in_flight[0].done:
            self.in_flight.popleft()
        if not self.building and len(self.in_flight) < self.sim.d.bulk.concurrency:
            self.build()

    def may_write(self) -> bool:
        """dal/domain_writers.py may_write: this chunk's lease is among the `limit` oldest."""
        sim = self.sim
        if not sim.reacts_in_chunk:
            return True
        for rank, key in enumerate(sim.leases):
            if key == self.key:
                return rank < sim.limit
        return True

    def throttled_now(self, sent_at: float) -> None:
        """A 429 (dal/domain_writers.py throttled): halved, unless halved since this request went out."""
        sim, writers = self.sim, self.sim.d.writers
        self.throttled = True
        if not sim.reacts_in_chunk or sent_at <= sim.halved_at:
            return
        sim.limit, sim.halved_at = max(writers.floor, sim.limit // 2), sim.loop.now
        sim.changed_at, sim.clean_requests = sim.loop.now, 0

    def succeeded_now(self, sent_at: float) -> None:
        """dal/domain_writers.py succeeded: the `limit`-th clean request sent since the last change +1."""
        sim, writers = self.sim, self.sim.d.writers
        if not sim.reacts_in_chunk or sent_at <= sim.changed_at:
            return
        sim.clean_requests += 1
        if sim.clean_requests >= sim.limit and sim.limit < writers.ceiling:
            sim.limit, sim.changed_at, sim.clean_requests = sim.limit + 1, sim.loop.now, 0
            sim.t.peak_limit = max(sim.t.peak_limit, sim.limit)

    def give_up(self) -> None:
        """Paused past its time: NoWriterSlot; the retry redoes the lines not settled (its checkpoint)."""
        if self.abandoned:  # its other paused request gave up first
            return
        self.abandoned = True
        sim = self.sim
        sim.leases.pop(self.key, None)
        sim.t.paused_out += 1
        self.lines = self.unsent + sum(r.docs for r in self.in_flight if not r.done)
        self.finish(NO_WRITER_SLOT)

    def release(self) -> None:
        sim, writers = self.sim, self.sim.d.writers
        sim.leases.pop(self.key, None)
        if not sim.reacts_in_chunk:
            sim.limit = (
                max(writers.floor, sim.limit // 2) if self.throttled else min(writers.ceiling, sim.limit + 1)
            )
        sim.t.peak_limit = max(sim.t.peak_limit, sim.limit)
        if self.key in sim.t.chunks_done:
            sim.t.duplicate_chunks += 1
        sim.t.chunks_done.add(self.key)
        self.finish(None)

    def finish(self, failure: str | None) -> None:
        sim = self.sim
        sim.ingest_running -= 1
        sim.invoke("ingest-chunk", sim.loop.now - self.started)
        retrier = sim.d.no_writer_slot
        if failure == NO_WRITER_SLOT and not sim.s.before_fixes and self.retries < retrier.attempts:
            sim.t.transitions += 1
            sim.loop.at(
                retrier.delay(self.retries, sim.rng),
                self.map.child,
                self.number,
                self.lines,
                self.retries + 1,
            )
            return
        self.map.child_done(self.number, self.retries, failure)


class Request:
    """One bulk request and its retries of rejected items (the whole request: all its shard tasks share
    the representative node's fate)."""

    def __init__(self, chunk: ChunkRun, docs: int) -> None:
        self.chunk, self.sim, self.docs, self.done = chunk, chunk.sim, docs, False
        self.sent_at = 0.0

    def send(self, retry: int, poll: int = 0) -> None:
        sim, chunk = self.sim, self.chunk
        if chunk.abandoned:
            return
        if not chunk.may_write():
            wait = SLOT_POLL.delay(poll, sim.rng.random)
            if sim.loop.now + wait >= chunk.pause_deadline:
                sim.loop.at(max(0.0, chunk.pause_deadline - sim.loop.now), chunk.give_up)
                return
            sim.loop.at(wait, self.send, retry, poll + 1)
            return
        sim.t.attempts += 1
        self.sent_at = sim.loop.now
        half = BULK_ROUND_TRIP_SECONDS / 2
        accepted = sim.node.submit(self.docs / sim.s.nodes, lambda: sim.loop.at(half, self.indexed))
        if not accepted:
            sim.t.rejected += 1
            chunk.throttled_now(sim.loop.now)
            if retry >= sim.d.bulk.max_retries:
                sim.loop.at(BULK_ROUND_TRIP_SECONDS, self.settle, 0)
                return
            backoff = min(sim.d.bulk.max_backoff_seconds, sim.d.bulk.initial_backoff_seconds * 2**retry)
            sim.loop.at(BULK_ROUND_TRIP_SECONDS + backoff * sim.rng.random(), self.send, retry + 1)

    def indexed(self) -> None:
        self.chunk.succeeded_now(self.sent_at)
        self.settle(self.docs)

    def settle(self, indexed: int) -> None:
        sim = self.sim
        if self.chunk.abandoned:
            return  # the chunk's retry writes these lines again and counts them
        sim.t.indexed += indexed
        sim.t.dead_lettered += self.docs - indexed
        self.chunk.map.ex.indexed += indexed
        self.chunk.map.ex.dead_lettered += self.docs - indexed
        if indexed:
            sim.t.last_indexed = sim.loop.now
        self.done = True
        self.chunk.settled()


def _lines_starting_in(start: int, end: int, line_bytes: int) -> int:
    """Lines of `line_bytes` at offsets 0, L, 2L, ... that start in [start, end): what a chunk owns."""
    return math.ceil(end / line_bytes) - math.ceil(start / line_bytes)


def simulate(design: Design, scenario: Scenario) -> Totals:
    return Simulation(design, scenario).run()


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    totals: Totals

    @property
    def tail_hours(self) -> float:
        return max(0.0, self.totals.last_indexed - self.totals.last_inference_end) / 3600

    @property
    def reject_rate(self) -> float:
        return self.totals.rejected / max(1, self.totals.attempts)

    def cost(self) -> tuple[float, float]:
        t = self.totals
        lam = t.lambda_gb_seconds * LAMBDA_ARM_PER_GB_SECOND + t.lambda_requests * LAMBDA_PER_REQUEST
        return lam, t.transitions * SFN_PER_TRANSITION

    def conserved(self) -> bool:
        t = self.totals
        return t.indexed + t.dead_lettered == t.records and t.duplicate_chunks == 0


def scenario_name(s: Scenario) -> str:
    name = f"N={s.nodes} q={s.queue_size} slots={s.jobs_in_flight}"
    if s.records_per_file != 10_000_000:
        name += f" {s.files}x{short(s.records_per_file)}"
    if s.ingest_concurrency:
        name += f" lambdas={s.ingest_concurrency}"
    if s.before_fixes:
        name += f" before-fixes win={s.retry_window_hours:g}h"
    elif not s.limit_in_chunk:
        name += " limit-per-chunk"
    elif not s.slot_wake:
        name += " no-wake"
    return name


def table(rows: list[Row]) -> list[str]:
    header = (
        "scenario | end to end | last inference end -> last doc | peak writers (limit) | 429 rate "
        "| peak tasks per node | history events max (children) | transitions | Lambda GB-s (requests) "
        "| Lambda $ "
        "| SFN $ | failed uploads"
    )
    lines = [header, "|".join("---" for _ in header.split("|"))]
    for row in rows:
        t = row.totals
        lam, sfn = row.cost()
        failed = ", ".join(f"{n} {why}" for why, n in t.failed_uploads.items()) or "0"
        lines.append(
            f"{scenario_name(row.scenario)} | {t.last_indexed / 3600:.1f} h | {row.tail_hours:.2f} h | "
            f"{t.peak_writers} ({t.peak_limit}) | {row.reject_rate:.2%} | {t.peak_node_tasks} | "
            f"{max(t.histories)} ({t.child_history_max}) | {t.transitions:,} | "
            f"{t.lambda_gb_seconds:,.0f} ({t.lambda_requests:,}) | "
            f"{lam:,.2f} | {sfn:,.2f} | {failed}"
        )
    return lines


def upload_limits(design: Design, records_per_file: int) -> list[str]:
    """What one upload may hold before Prepare refuses it: max_remote_jobs x per-job records, and time."""
    from osbatch.config import BedrockQuotas, InferenceConfig, OpenAIJobConfig

    remote_jobs = int(InferenceConfig.model_fields["max_remote_jobs"].default)
    per_job = {
        "sagemaker": design.records_per_job,
        "bedrock": BedrockQuotas().max_records_per_job,
        "openai": int(OpenAIJobConfig.model_fields["max_requests_per_file"].default),
    }
    prepare_records = int(
        design.ingest_timeout / (CLIENT_US_PER_DOC / 1e6 * LAMBDA_MB_PER_VCPU / design.memory_mb["prepare"])
    )
    lines = [
        f"Prepare's {design.ingest_timeout:.0f} s timeout at the ingest path's cost per record: "
        f"~{prepare_records:,} records per upload"
    ]
    for backend, records in per_job.items():
        most = remote_jobs * records
        verdict = "fits" if most >= records_per_file else "REFUSED by Prepare (TooManyRemoteJobs)"
        lines.append(
            f"{backend}: max_remote_jobs {remote_jobs} x {records:,} records per remote job = {most:,} "
            f"per upload; "
            f"an upload of {records_per_file:,}: {verdict}"
        )
    return lines


def scenarios(files: int, per_file: int, nodes: list[int]) -> list[Scenario]:
    """The deployed design over N, then its defaults, a tiny write queue and larger uploads; last, the
    design before the four fixes, for comparison. verdicts() reads the rows by these positions."""
    base = Scenario(files=files, records_per_file=per_file, nodes=nodes[0])
    middle = nodes[len(nodes) // 2]
    before = replace(base, before_fixes=True)
    return [
        *(replace(base, nodes=n) for n in nodes),
        replace(base, nodes=middle, jobs_in_flight=4),  # every default: max_jobs_in_flight 4
        replace(base, nodes=middle, queue_size=8),  # a tiny write queue, as the reliability scenarios set it
        replace(base, nodes=middle, files=files // 2, records_per_file=per_file * 2),
        replace(before, nodes=middle, jobs_in_flight=4, retry_window_hours=2.0),  # every default, then
        replace(before, nodes=middle, retry_window_hours=2.0),
        replace(before, nodes=nodes[0]),
        replace(before, nodes=middle),
        # The slot wait before a release woke the oldest waiting upload: StartJob's retrier only.
        replace(base, nodes=middle, jobs_in_flight=4, slot_wake=False),
        replace(base, nodes=middle, slot_wake=False),
        # The tiny write queue again, the writer limit halving only as throttled chunks end.
        replace(base, nodes=middle, queue_size=8, limit_in_chunk=False),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1e7 records (10 uploads of 1e6)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 6, 12, 24])
    args = parser.parse_args(argv)
    from bench.machine import cpu_summary

    print(f"cpu: {cpu_summary()} (runs the simulation; its calibration figures were measured on an AMD EPYC)")
    files, per_file = (10, 1_000_000) if args.quick else (100, 10_000_000)
    design = deployed_design()
    rows = [Row(s, simulate(design, s)) for s in scenarios(files, per_file, sorted(args.nodes))]
    print(
        f"{short(files * per_file)} records in {files} uploads of {short(per_file)} (unless named), "
        "SageMaker, "
        f"1 ml.m4.xlarge per transform job at the seed's {RECORDS_PER_INSTANCE_SECOND:.1f} records/s; "
        f"data nodes of 8 cores; seed: {short(int(SEED_RECORDS))} records embedded in {SEED_HOURS:g} h on "
        f"{SEED_INSTANCES} instances"
    )
    print("\n".join(table(rows)))
    print("\n".join(upload_limits(design, per_file)))
    return verdicts(rows, files * per_file, len(args.nodes))


def verdicts(rows: list[Row], records: int, sweep: int) -> int:
    label = f"{short(records)} records"
    history = max(max(row.totals.histories) for row in rows)
    conserved = all(row.conserved() for row in rows)
    swept, defaults, small_queue = rows[:sweep], rows[sweep], rows[sweep + 1]
    before_defaults, before_window, before_small, before_middle = rows[sweep + 3 : sweep + 7]
    no_wake_defaults, no_wake_middle = rows[sweep + 7 : sweep + 9]
    small_queue_per_chunk = rows[sweep + 9]
    failed_sweep = sum(sum(row.totals.failed_uploads.values()) for row in swept)
    failed_defaults = sum(defaults.totals.failed_uploads.values())
    middle = next(row for row in swept if row.scenario.nodes == defaults.scenario.nodes)
    seed_hours = seed_embedding_hours(middle.scenario, records)
    ratio = middle.totals.last_indexed / 3600 / seed_hours

    def failed(row: Row) -> int:
        return sum(row.totals.failed_uploads.values())

    lines = [
        f"{label}, history events per execution: {history} (target <= {HISTORY_LIMIT:,}): "
        f"{_verdict(history <= HISTORY_LIMIT)}",
        f"simulation conservation: every record indexed once (target exact): {_verdict(conserved)}",
        f"{label}, 429 rate with a write queue of {small_queue.scenario.queue_size} vs "
        f"{middle.scenario.queue_size}: {small_queue.reject_rate:.2%} vs {middle.reject_rate:.2%} "
        f"(target higher): {_verdict(small_queue.reject_rate > middle.reject_rate)}",
        f"{label}, 429 rate with a write queue of {small_queue.scenario.queue_size}, the writer limit "
        f"reacting within running chunks vs as they end: {small_queue.reject_rate:.2%} vs "
        f"{small_queue_per_chunk.reject_rate:.2%} (target lower): "
        f"{_verdict(small_queue.reject_rate < small_queue_per_chunk.reject_rate)}",
        f"{label}, uploads failed over N={','.join(str(r.scenario.nodes) for r in swept)}, 10 slots: "
        f"{failed_sweep} (target 0): {_verdict(failed_sweep == 0)}",
        f"{label}, uploads failed with every default (max_jobs_in_flight 4, retry_time_window PT2H): "
        f"{failed_defaults} (target 0): {_verdict(failed_defaults == 0)}",
        f"{label} on N={middle.scenario.nodes}, end to end vs the seed's embedding alone "
        f"({seed_hours:.1f} h): "
        f"{middle.totals.last_indexed / 3600:.1f} h, {ratio:.2f}x (target <= 1.1x): {_verdict(ratio <= 1.1)}",
        f"{label}, default max_jobs_in_flight 4, end to end: {defaults.totals.last_indexed / 3600:.1f} h "
        "(informational)",
        f"{label} before the fixes: uploads failed with every default {failed(before_defaults)}, with 10 "
        f"slots and PT2H {failed(before_window)}, on N={before_small.scenario.nodes} with 10 slots "
        f"{failed(before_small)}; end to end on N={before_middle.scenario.nodes} "
        f"{before_middle.totals.last_indexed / 3600:.1f} h (informational)",
        f"{label}, slots standing free while an upload waited, per handover: "
        f"{_idle(defaults)} with the wake-up vs {_idle(no_wake_defaults)} without (4 slots), "
        f"{_idle(middle)} vs {_idle(no_wake_middle)} (10 slots) (target lower): "
        f"{_verdict(_idle_seconds(defaults) < _idle_seconds(no_wake_defaults))}",
        f"{label}, end to end with the wake-up vs without: {defaults.totals.last_indexed / 3600:.1f} h vs "
        f"{no_wake_defaults.totals.last_indexed / 3600:.1f} h (4 slots), "
        f"{middle.totals.last_indexed / 3600:.1f} h vs {no_wake_middle.totals.last_indexed / 3600:.1f} h "
        "(10 slots) (informational)",
    ]
    print("\n".join(lines))
    return 0 if conserved else 1


def _idle_seconds(row: Row) -> float:
    return row.totals.slot_idle_seconds / max(1, row.totals.slot_handovers)


def _idle(row: Row) -> str:
    return f"{_idle_seconds(row):.1f} s ({row.totals.slot_handovers} handovers)"


def seed_embedding_hours(s: Scenario, records: int) -> float:
    """The seed's rate (1e9 records in 14 h on 100 instances) on the instances this scenario runs at once."""
    remote_jobs = math.ceil(s.records_per_file / 1_000_000)
    instances = min(s.files, s.jobs_in_flight) * remote_jobs * s.instances_per_job
    return records / (RECORDS_PER_INSTANCE_SECOND * instances) / 3600


def short(count: int) -> str:
    """1e9, 2e7: the way the docs write record counts."""
    mantissa, exponent = f"{count:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    sys.exit(main())
