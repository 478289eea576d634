"""How many execution-history events one job can write, checked at synth against Step Functions' limit.

A Standard execution has a hard quota of 25,000 history events; when it is reached the execution fails where
it stands (AWS: "Avoid reaching the history quota"). No Catch runs then, so FailJob never reports the job
and its row would stay RUNNING. Two loops grow a job's history: the polling loop, with the job's length, and
the ingest loop (PlanIngest, the Map, PartFinished?), run once per remote job whose output is ingested, so
at most inference.max_remote_jobs times. Every pipeline's polling and remote job bound is checked against
the state machine it runs, and synth refuses a config that could outgrow the history. Continuing as a new
execution was the alternative; it would break the one-execution-per-job naming that makes submits idempotent
(the execution name is the job id).

Events per state, as Step Functions writes them (HistoryEvent types):
- Task: TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded or TaskFailed, TaskStateExited (5);
  each retried attempt adds TaskScheduled, TaskStarted, TaskFailed (3);
- a callback Task (`.waitForTaskToken`) also writes TaskSubmitted, and ends in TaskSucceeded or
  TaskTimedOut (6);
- Wait, Choice, Pass, Succeed: <Type>StateEntered, <Type>StateExited (2); Fail: FailStateEntered (1);
- Distributed Map: MapStateEntered, MapStateStarted, MapRunStarted, MapRunSucceeded or MapRunFailed,
  MapStateSucceeded or MapStateFailed, MapStateExited (6); its child executions have their own histories;
- the execution itself: ExecutionStarted and ExecutionSucceeded, ExecutionFailed or ExecutionTimedOut (2).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from osbatch.infra_facts import ConfigError, PipelineConfig, PollingConfig, next_wait_seconds

HISTORY_LIMIT = 25_000
EVENTS_PER_STATE = {"Task": 5, "Wait": 2, "Choice": 2, "Pass": 2, "Succeed": 2, "Fail": 1, "Map": 6}
CALLBACK_SUFFIX = ".waitForTaskToken"
EVENTS_PER_CALLBACK = 1  # TaskSubmitted
EVENTS_PER_RETRY = 3
EXECUTION_EVENTS = 2
DEFAULT_MAX_ATTEMPTS = 3  # what Step Functions uses when a retrier names no MaxAttempts
# A poll's retries are bounded per poll (MaxAttempts) but not over a job, and jittered delays can be near
# zero; the check reserves one retried invocation per poll. Every other state is counted with all its retries.
RETRIES_RESERVED_PER_POLL = 1


def poll_count(polling: PollingConfig) -> int:
    """The most polls a job can make: PollJob expires the job at the first poll at or past timeout_hours.

    Waits start at interval_seconds and grow as PollJob grows them; time spent in the tasks only makes
    the count smaller, so this is an upper bound."""
    timeout = polling.timeout_hours * 3600
    elapsed, polls, wait = 0, 0, polling.interval_seconds
    while elapsed < timeout:
        elapsed += wait
        polls += 1
        wait = next_wait_seconds(wait, polling)
    return polls


def state_events(state: Mapping[str, Any], *, all_retries: bool) -> int:
    """Events one entry of a state writes: all its retries, or the per-poll reserve."""
    events = EVENTS_PER_STATE[state["Type"]]
    if str(state.get("Resource", "")).endswith(CALLBACK_SUFFIX):
        events += EVENTS_PER_CALLBACK
    retriers = state.get("Retry", [])
    if not retriers:
        return events
    if all_retries:
        attempts = sum(int(r.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS)) for r in retriers)
    else:
        attempts = RETRIES_RESERVED_PER_POLL
    return events + EVENTS_PER_RETRY * attempts


def worst_case_events(
    definition: Mapping[str, Any],
    loop: Collection[str],
    polls: int,
    ingest_loop: Collection[str] = (),
    rounds: int = 1,
    slot_loop: Collection[str] = (),
    slot_waits: int = 0,
) -> int:
    """Every state outside the loops once, with all its retries, plus `polls` passes through the polling
    loop, `rounds` through the ingest loop (its states with all their retries each time) and `slot_waits`
    more passes through the slot loop (WaitForSlot and StartJob, each with the per-poll retry reserve)."""
    states: Mapping[str, Mapping[str, Any]] = definition["States"]
    unknown = (set(loop) | set(ingest_loop) | set(slot_loop)) - set(states)
    if unknown:
        raise ValueError(f"the loops name states the definition lacks: {sorted(unknown)}")
    looped = set(loop) | set(ingest_loop)
    once = sum(state_events(s, all_retries=True) for name, s in states.items() if name not in looped)
    per_poll = sum(state_events(states[name], all_retries=False) for name in loop)
    per_round = sum(state_events(states[name], all_retries=True) for name in ingest_loop)
    per_slot_wait = sum(state_events(states[name], all_retries=False) for name in slot_loop)
    return EXECUTION_EVENTS + once + polls * per_poll + rounds * per_round + slot_waits * per_slot_wait


def slot_wait_count(window_seconds: int, fallback_seconds: int) -> int:
    """The most times a job parks in WaitForSlot: a wait ends at the latest at its fallback timeout, and
    StartJob fails the job at the first attempt past slot_wait_window. A release that wakes the job early
    lets it start (it wakes only the jobs whose turn it is), so wakes add no waits to this bound."""
    return -(-window_seconds // fallback_seconds)


def check_polling_fits(
    pipelines: Sequence[PipelineConfig],
    definition: Mapping[str, Any],
    loop: Collection[str],
    ingest_loop: Collection[str] = (),
    *,
    slot_loop: Collection[str] = (),
    slot_wait_seconds: int = 0,
) -> None:
    """Refuse any pipeline whose polling and remote jobs could take a job past the history limit; say
    what would fit."""
    problems = []
    for pipeline in pipelines:
        polling = pipeline.inference.polling
        rounds = pipeline.inference.max_remote_jobs
        waits = (
            slot_wait_count(pipeline.inference.slot_wait_window_seconds, slot_wait_seconds)
            if slot_loop
            else 0
        )
        shape = _Loops(definition, loop, ingest_loop, rounds, slot_loop, waits)
        events = shape.events(polling)
        if events <= HISTORY_LIMIT:
            continue
        problems.append(
            f"pipeline '{pipeline.name}': inference.polling: up to {poll_count(polling)} polls in "
            f"timeout_hours {polling.timeout_hours:g} and up to {rounds} remote jobs "
            f"(inference.max_remote_jobs) could write {events} execution history events, past "
            f"Step Functions' limit of {HISTORY_LIMIT} per execution (the job would fail unreported); "
            f"raise max_interval_seconds to at least {_fewest_seconds(shape, polling)} or lower "
            f"timeout_hours to at most {_most_hours(shape, polling)} (or lower max_remote_jobs)"
        )
    if problems:
        raise ConfigError("\n".join(problems))


class _Loops:
    def __init__(
        self,
        definition: Mapping[str, Any],
        loop: Collection[str],
        ingest_loop: Collection[str],
        rounds: int,
        slot_loop: Collection[str] = (),
        slot_waits: int = 0,
    ) -> None:
        self._definition, self._loop, self._ingest_loop, self._rounds = definition, loop, ingest_loop, rounds
        self._slot_loop, self._slot_waits = slot_loop, slot_waits

    def events(self, polling: PollingConfig) -> int:
        return worst_case_events(
            self._definition,
            self._loop,
            poll_count(polling),
            self._ingest_loop,
            self._rounds,
            self._slot_loop,
            self._slot_waits,
        )

    def fits(self, polling: PollingConfig) -> bool:
        return self.events(polling) <= HISTORY_LIMIT


def _fewest_seconds(shape: _Loops, polling: PollingConfig) -> int:
    """The smallest max_interval_seconds that fits; more polls never fit with a smaller one."""
    low, high = polling.max_interval_seconds, int(polling.timeout_hours * 3600) + 1
    while low < high:
        middle = (low + high) // 2
        if shape.fits(polling.model_copy(update={"max_interval_seconds": middle})):
            high = middle
        else:
            low = middle + 1
    return low


def _most_hours(shape: _Loops, polling: PollingConfig) -> int:
    """The largest whole timeout_hours that fits (0 if not one hour does); fewer hours never add polls."""
    low, high = 0, int(polling.timeout_hours)
    while low < high:
        middle = (low + high + 1) // 2
        if shape.fits(polling.model_copy(update={"timeout_hours": middle})):
            low = middle
        else:
            high = middle - 1
    return low
