"""max_jobs_in_flight on the real local runtime: a burst of uploads never runs more remote jobs at once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from tests.integration.helpers import faults, upload, wait_for_end, wait_for_free_slots

# clean_faults resets the emulators' peak counts around each test
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
PIPELINE = "e2e-slots"


def test_twenty_uploads_at_once_never_run_more_than_three_jobs(
    stack: Any, config: PipelineConfig, jobs: JobTable
) -> None:
    # Given a pipeline with max_jobs_in_flight 3
    assert config.inference.max_jobs_in_flight == 3
    # When 20 files are uploaded at once
    job_ids = [
        upload(
            stack,
            config,
            f"slots-{n}-{time.time_ns()}.jsonl",
            b"".join(
                json.dumps({"_id": f"slots-{n}-{i}", "text": f"text {i} of file {n}"}).encode() + b"\n"
                for i in range(3)
            ),
        )
        for n in range(20)
    ]
    finished = [wait_for_end(jobs, job_id, timeout=600) for job_id in job_ids]
    # Then every job completed, the emulator never had more than 3 transform jobs running at once,
    # and every slot was given back
    assert [job["state"] for job in finished] == ["COMPLETED"] * 20
    observed = faults()["peaks"].get("sagemaker", 0)
    print(f"most transform jobs running at once: {observed}")
    assert 1 <= observed <= 3
    wait_for_free_slots(jobs, config.name)
