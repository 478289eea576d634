"""`osbatch status` shows a job's fields, not the parked workflow's task token."""

from __future__ import annotations

from cli.views import job_detail


def test_job_detail_hides_the_task_token_and_shows_pending_finishes() -> None:
    # Given a job item while its workflow waits, with a finish recorded for the next wait
    job = {
        "job_id": "docs-0123456789abcdef",
        "item": "job",
        "state": "RUNNING",
        "wake_token": "AQCEAAAAKgAAAAMAAAAAAAAAAe1p0X2ZjY2U2NzM0",
        "wake_pending": {"osb-docs-0123456789abcdef"},
    }
    # When it is shown
    text = job_detail(job)
    # Then the token is not printed, and everything else is
    assert "wake_token" not in text and "AQCEAAAA" not in text
    assert "wake_pending" in text and "RUNNING" in text
