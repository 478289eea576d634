"""Execution history: a pipeline whose polling could outgrow Step Functions' 25,000 events fails synth."""

from __future__ import annotations

from typing import Any

import pytest

from infra.history import (
    HISTORY_LIMIT,
    check_polling_fits,
    poll_count,
    slot_wait_count,
    state_events,
    worst_case_events,
)
from infra.stack import OsbatchStack
from infra.workflow import INGEST_LOOP, POLL_LOOP, SLOT_LOOP, SLOT_WAIT_FALLBACK_SECONDS
from osbatch.config import ConfigError, PollingConfig
from tests.infra.helpers import Synthesized, definition, new_app, pipeline

# The worst case the check exists for: a poll every minute for three days.
EVERY_MINUTE = {"inference": {"polling": {"interval_seconds": 60, "max_interval_seconds": 60}}}


@pytest.fixture(scope="module")
def machine(main: Synthesized) -> dict[str, Any]:
    return definition(main)


def test_the_polling_loop_is_a_callback_task_a_task_and_a_choice(machine: dict[str, Any]) -> None:
    # Given the synthesized definition and the states the check counts once per poll
    states = machine["States"]

    # Then they form the loop WaitForJob -> PollJob -> JobDone? -> PartFinished? -> WaitForJob
    assert [states[name]["Type"] for name in POLL_LOOP] == ["Task", "Task", "Choice", "Choice"]
    # And the park's timeout, its only other way out, leads into the loop too
    timeout = [c["Next"] for c in states["WaitForJob"]["Catch"] if c["ErrorEquals"] == ["States.Timeout"]]
    assert timeout == ["PollJob"]
    assert states["WaitForJob"]["Next"] == "PollJob" and states["PollJob"]["Next"] == "JobDone?"
    assert "PartFinished?" in [rule["Next"] for rule in states["JobDone?"]["Choices"]]
    assert states["PartFinished?"]["Default"] == "WaitForJob"
    # And the only other loop is the ingest loop, PartFinished? -> PlanIngest -> IngestChunks -> back
    assert [states[name]["Type"] for name in INGEST_LOOP] == ["Task", "Map", "Choice"]
    assert states["PlanIngest"]["Next"] == "IngestChunks"
    assert states["IngestChunks"]["Next"] == "PartFinished?"
    looped = set(POLL_LOOP) | set(INGEST_LOOP)
    outside = [n for n, s in states.items() if n not in looped and s.get("Next") in looped]
    assert outside == ["StartJob"]  # the only way in


def test_polls_follow_the_backoff_up_to_the_timeout() -> None:
    # Given the default polling (60 s growing by 1.5 to 600 s, 72 h) and a poll every minute for 72 h
    default = PollingConfig()
    every_minute = PollingConfig(interval_seconds=60, max_interval_seconds=60)

    # When the polls are counted
    # Then the default waits 60, 90, 135, 203, 305, 458 s, then 600 s until 259,200 s: 6 + 430 polls
    assert poll_count(default) == 436
    # And one a minute is 72 * 60 polls
    assert poll_count(every_minute) == 4320


def test_a_poll_counts_its_states_and_one_retry(machine: dict[str, Any]) -> None:
    # Given PollJob (a Task with two Lambda retriers) and StartJob (also retrying throttling)
    states = machine["States"]

    # Then one poll is 5 events for the Task plus 3 for one retried attempt
    assert state_events(states["PollJob"], all_retries=False) == 5 + 3
    # And the park, a callback Task, writes TaskSubmitted too (6), plus one retried attempt
    assert state_events(states["WaitForJob"], all_retries=False) == 6 + 3
    # And a state outside the loop is counted with every attempt of every retrier (10 + 8 Lambda retries)
    assert state_events(states["Prepare"], all_retries=True) == 5 + 3 * (10 + 8)
    throttled = next(r for r in states["StartJob"]["Retry"] if "BackendThrottled" in r["ErrorEquals"])
    retries = 10 + 8 + throttled["MaxAttempts"]
    assert state_events(states["StartJob"], all_retries=True) == 5 + 3 * retries
    # And a wait for a job slot is WaitForSlot (a callback, 6) and StartJob again (5), one retry each
    assert sum(state_events(states[name], all_retries=False) for name in SLOT_LOOP) == 6 + 3 + 5 + 3


def test_waits_for_a_slot_are_counted_up_to_the_slot_wait_window(machine: dict[str, Any]) -> None:
    # Given the default slot_wait_window (48 h) and WaitForSlot's 10-minute fallback timeout
    window = pipeline().inference.slot_wait_window_seconds

    # When the waits are counted / Then a job parks at most 288 times (a wake-up ends a wait early and
    # starts the job, so it adds none)
    waits = slot_wait_count(window, SLOT_WAIT_FALLBACK_SECONDS)
    assert waits == 288
    # And each wait adds WaitForSlot and StartJob to the worst case: 17 events, 4,896 over two days
    polls = poll_count(pipeline().inference.polling)
    without = worst_case_events(machine, POLL_LOOP, polls, INGEST_LOOP, 1)
    with_waits = worst_case_events(machine, POLL_LOOP, polls, INGEST_LOOP, 1, SLOT_LOOP, waits)
    assert with_waits - without == 288 * 17


def test_the_default_polling_fits_well_within_the_limit(machine: dict[str, Any]) -> None:
    # Given the example pipeline's polling (the defaults)
    polls = poll_count(pipeline().inference.polling)

    rounds = pipeline().inference.max_remote_jobs

    # When the worst case is computed: the loop's 21 events per poll (park 9, PollJob 8, the choices 2
    # each), the ingest loop's per remote job
    # (PlanIngest with every retry, the Map, the choice), plus every other state once
    events = worst_case_events(machine, POLL_LOOP, polls, INGEST_LOOP, rounds)
    per_round = 5 + 3 * (10 + 8) + 6 + 2

    # Then it is below the 25,000 events of one execution (about two thirds), and the check lets it through
    assert polls * 21 + rounds * per_round < events < HISTORY_LIMIT * 0.7
    check_polling_fits([pipeline()], machine, POLL_LOOP, INGEST_LOOP)
    # And with two days of waits for a slot before it (288 at most) it still fits, with room to spare
    waits = slot_wait_count(pipeline().inference.slot_wait_window_seconds, SLOT_WAIT_FALLBACK_SECONDS)
    queued = worst_case_events(machine, POLL_LOOP, polls, INGEST_LOOP, rounds, SLOT_LOOP, waits)
    assert queued < HISTORY_LIMIT * 0.9
    check_polling_fits(
        [pipeline()],
        machine,
        POLL_LOOP,
        INGEST_LOOP,
        slot_loop=SLOT_LOOP,
        slot_wait_seconds=SLOT_WAIT_FALLBACK_SECONDS,
    )


def test_remote_jobs_per_upload_count_towards_the_history(machine: dict[str, Any]) -> None:
    # Given default polling and the most remote jobs the config allows
    many = pipeline(inference={"max_remote_jobs": 500})
    # When checked / Then the check refuses it, naming max_remote_jobs as a way out
    with pytest.raises(ConfigError, match=r"up to 500 remote jobs .*\(or lower max_remote_jobs\)"):
        check_polling_fits([many], machine, POLL_LOOP, INGEST_LOOP)


def test_polling_every_minute_for_three_days_fails_synth_with_what_would_fit() -> None:
    # Given a pipeline that polls every minute for 72 h (about 4,320 polls)
    every_minute = pipeline(**EVERY_MINUTE)

    # When the stack is built
    with pytest.raises(ConfigError) as error:
        OsbatchStack(new_app(), "every-minute", pipelines=[every_minute])

    # Then synth stops with the pipeline and field named, the count, the limit, and two ways out
    message = str(error.value)
    assert message.startswith(
        "pipeline 'python-docs': inference.polling: up to 4320 polls in timeout_hours 72"
    )
    assert "limit of 25000 per execution" in message
    assert "raise max_interval_seconds to at least" in message and "lower timeout_hours to at most" in message


def test_the_suggested_settings_are_the_limits_that_fit(machine: dict[str, Any]) -> None:
    # Given the error for polling every minute for 72 h
    with pytest.raises(ConfigError) as error:
        check_polling_fits([pipeline(**EVERY_MINUTE)], machine, POLL_LOOP, INGEST_LOOP)
    words = str(error.value).split()
    seconds = int(words[words.index("least") + 1])
    hours = int(words[words.index("most") + 1])

    # When each suggestion is applied, and when it is missed by one
    def fits(**polling: Any) -> bool:
        config = PollingConfig(**{"interval_seconds": 60, "max_interval_seconds": 60, **polling})
        rounds = pipeline().inference.max_remote_jobs
        return worst_case_events(machine, POLL_LOOP, poll_count(config), INGEST_LOOP, rounds) <= HISTORY_LIMIT

    # Then each fits, and each one step short of it does not
    assert fits(max_interval_seconds=seconds) and not fits(max_interval_seconds=seconds - 1)
    assert fits(timeout_hours=hours) and not fits(timeout_hours=hours + 1)
