"""A released job slot wakes the oldest job parked in WaitForSlot at once (steps/support/slot_wake.py),
against moto's executing Step Functions and a real task token; park-job parks it as WaitForSlot does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from osbatch.dal import JobTable, SlotWakeups
from osbatch.dal.wakeups import SLOT_PENDING, SLOT_TOKEN, WAKE_PENDING, WAKE_TOKEN
from osbatch.handlers import park_job
from osbatch.models import SourceObject
from osbatch.steps.support.resume import Outcome
from osbatch.steps.support.slot_wake import SlotRelease
from tests.unit.helpers import FakeContext, deployed_handlers
from tests.unit.parked_workflow import Workflow

PIPELINE = "msmarco"
REGION = "us-east-1"
NOW = 1000.0


class Queue:
    """One pipeline of `limit` slots on a moto job table, its jobs parked for real when refused."""

    def __init__(self, table: Any, limit: int) -> None:
        self.jobs = JobTable(table)
        self.limit = limit
        self._sfn = boto3.client("stepfunctions", region_name=REGION)
        self._sqs = boto3.client("sqs", region_name=REGION)
        self.release = SlotRelease(self.jobs, SlotWakeups(table), self._sfn, limit=limit, now=lambda: NOW)
        self.workflows: dict[str, Workflow] = {}

    def ask(self, job_id: str) -> bool:
        """StartJob's slot request for a job (created on first ask)."""
        source = SourceObject(bucket="in", key=f"input/msmarco/{job_id}.jsonl", etag="e", size=1)
        self.jobs.create(job_id, PIPELINE, source)
        return self.jobs.acquire_slot(PIPELINE, job_id, self.limit, NOW)

    def park(self, job_id: str) -> tuple[str, str]:
        """The job parks in WaitForSlot: its execution, and what park-job answered."""
        workflow = Workflow(self._sfn, self._sqs, job_id, wait="slot")
        self.workflows[job_id] = workflow
        execution, payload = workflow.park()
        return execution, str(park_job.handler(payload, FakeContext())["outcome"])

    def ended_in(self, job_id: str, execution: str) -> str:
        return self.workflows[job_id].ended_in(execution)

    def waiting(self, job_id: str, execution: str) -> bool:
        return self.workflows[job_id].is_waiting(execution)


@pytest.fixture
def one_slot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Queue]:
    with deployed_handlers(monkeypatch, tmp_path) as table:
        yield Queue(table, limit=1)


def test_a_release_wakes_the_parked_waiting_job_at_once(one_slot: Queue) -> None:
    # Given a pipeline of one slot, held by A, and B refused and parked in WaitForSlot for an hour
    assert one_slot.ask("a")
    assert not one_slot.ask("b")
    execution, parked = one_slot.park("b")
    assert parked == "recorded" and one_slot.waiting("b", execution)

    # When A gives its slot back
    woken = one_slot.release(PIPELINE, "a")

    # Then B's wait ends at once (woken, not timed out), and B's retried StartJob gets the slot
    assert woken == {"b": Outcome.WOKEN}
    assert one_slot.ended_in("b", execution) == "Woken"
    assert one_slot.ask("b")
    # And the wake-up left nothing on B's item, and never touched WaitForJob's token or pending finishes
    item = one_slot.jobs.get("b") or {}
    assert not {SLOT_TOKEN, SLOT_PENDING, WAKE_TOKEN, WAKE_PENDING} & set(item)


def test_a_release_before_the_job_parks_makes_its_park_resume_at_once(one_slot: Queue) -> None:
    # Given B refused a slot, its StartJob failed but WaitForSlot not yet parked (the race)
    assert one_slot.ask("a")
    assert not one_slot.ask("b")

    # When A gives its slot back first
    woken = one_slot.release(PIPELINE, "a")

    # Then the release is noted on B's item, and B's park resumes its own task instead of waiting the hour
    assert woken == {"b": Outcome.RECORDED}
    assert (one_slot.jobs.get("b") or {})[SLOT_PENDING] == {"a"}
    execution, parked = one_slot.park("b")
    assert parked == "woken"
    assert one_slot.ended_in("b", execution) == "Woken"


def test_a_release_wakes_only_the_oldest_and_a_rerun_wakes_no_one_else(one_slot: Queue) -> None:
    # Given A holding the only slot, B then C refused and parked, B first
    assert one_slot.ask("a")
    assert not one_slot.ask("b")
    assert not one_slot.ask("c")
    b_execution, _ = one_slot.park("b")
    c_execution, _ = one_slot.park("c")

    # When A gives its slot back, and B takes it
    first = one_slot.release(PIPELINE, "a")
    assert one_slot.ask("b")
    # And the release runs again (a retried Finalize after PollJob's)
    again = one_slot.release(PIPELINE, "a")

    # Then only B was woken, once; C, whose turn it is not, waits on (its fallback timeout or B's release)
    assert first == {"b": Outcome.WOKEN}
    assert again == {}
    assert one_slot.ended_in("b", b_execution) == "Woken"
    assert one_slot.waiting("c", c_execution)
    assert not one_slot.ask("c")

    # And when B gives the slot back, C is woken and starts
    assert one_slot.release(PIPELINE, "b") == {"c": Outcome.WOKEN}
    assert one_slot.ended_in("c", c_execution) == "Woken"
    assert one_slot.ask("c")


def test_a_release_with_no_one_waiting_wakes_no_one(one_slot: Queue) -> None:
    # Given A holding the only slot and no job waiting
    assert one_slot.ask("a")
    # When it gives the slot back / Then no one is woken and the slot is free for the next job
    assert one_slot.release(PIPELINE, "a") == {}
    assert one_slot.ask("b")
