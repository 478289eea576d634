"""How Bedrock and OpenAI jobs fail, end to end on the real local runtime, with the emulators' faults:
throttling retried and then exhausted, status calls failing until the job is UNREACHABLE, and expiry."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from local.aws import session
from local.runtime import AWS_URL, OPENAI_URL
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from tests.integration.helpers import (
    OPENAI_BASE,
    TOPICS,
    dead_letters,
    faults,
    report,
    set_faults,
    upload,
    wait_for_end,
    wait_for_free_slots,
)

# every test starts and ends with no faults set
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
FRESH = ("e2e-bedrock", "e2e-openai", "e2e-openai-throttle", "e2e-openai-expiry")
# StartJob retries throttling for the longest retry_time_window of the deployed pipelines (PT2H), which the
# runtime's clock runs at 1/100: about 72 s of waits before the job fails.
EXHAUSTED_TIMEOUT = 600
BEDROCK_MINIMUM = 100  # records per job (the emulator's default, as on AWS)


def jsonl(records: list[dict[str, Any]], bad_lines: tuple[bytes, ...] = ()) -> bytes:
    """The records as JSONL, with bad lines after the first record."""
    lines = [json.dumps(record).encode() for record in records]
    return b"\n".join(lines[:1] + list(bad_lines) + lines[1:]) + b"\n"


def records(prefix: str, count: int) -> list[dict[str, Any]]:
    named = [{"_id": f"{prefix}-{name}", "text": text} for name, text in TOPICS]
    return (named + [{"_id": f"{prefix}-{n}", "text": f"Passage number {n}."} for n in range(count)])[:count]


def openai_key() -> str:
    secrets = session().client("secretsmanager", endpoint_url=AWS_URL)
    return str(secrets.get_secret_value(SecretId="osbatch/openai-api-key")["SecretString"])


def openai_batch(batch_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{OPENAI_URL}/batches/{batch_id}", headers={"Authorization": f"Bearer {openai_key()}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


# --- throttling on submit, retried until it passes ---


def test_a_throttled_bedrock_create_is_retried_and_the_job_completes(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given Bedrock refuses the next two CreateModelInvocationJob calls with ThrottlingException
    set_faults(throttle_creates=2)
    config = configs["e2e-bedrock"]
    # When a file of Bedrock's minimum size is uploaded
    job_id = upload(stack, config, f"throttled-{time.time_ns()}.jsonl", jsonl(records("bt", BEDROCK_MINIMUM)))
    job = wait_for_end(jobs, job_id)
    # Then StartJob's retries used up both refusals, and the job completed with every record indexed
    assert faults(AWS_URL)["throttle_creates"] == 0
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == (
        "COMPLETED",
        BEDROCK_MINIMUM,
        BEDROCK_MINIMUM,
        0,
    )
    wait_for_free_slots(jobs, config.name)


def test_a_batch_failed_with_token_limit_exceeded_is_created_again_and_the_job_completes(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given OpenAI fails the next two batches with token_limit_exceeded (its enqueued-token limit)
    set_faults(throttle_creates=2)
    config = configs["e2e-openai"]
    # When a file is uploaded
    job_id = upload(stack, config, f"throttled-{time.time_ns()}.jsonl", jsonl(records("ot", 3)))
    job = wait_for_end(jobs, job_id)
    # Then both failed batches were created again within the retry window, and the job completed
    assert faults(OPENAI_BASE)["throttle_creates"] == 0
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == ("COMPLETED", 3, 3, 0)


# --- partial completion: the failed requests dead-lettered, the rest indexed ---


def test_an_openai_job_with_failed_requests_and_bad_lines_counts_each_dead_letter_once(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given 6 records of which the model fails 2 (the error file), and 2 lines that do not parse
    set_faults(fail_records_containing="POISON")
    poisoned = [{"_id": f"op-bad-{n}", "text": f"POISON {n}"} for n in (1, 2)]
    batch = [*records("op", 4), *poisoned]
    body = jsonl(batch, (b'{"_id": "op-cut", ', b'{"text": "no id"}'))
    # When the file is uploaded
    job_id = upload(stack, configs["e2e-openai"], f"partial-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then it is PARTIALLY_COMPLETED: 8 in, 4 indexed, 4 dead-lettered (2 parse, 2 inference), none lost
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == (
        "PARTIALLY_COMPLETED",
        8,
        4,
        4,
    )
    assert report(stack, job_id)["unaccounted"] == 0
    letters = dead_letters(stack, job_id)
    assert sorted((letter["stage"], letter["line"]) for letter in letters) == [
        ("inference", 7),
        ("inference", 8),
        ("parse", 2),
        ("parse", 3),
    ]
    failed = sorted(letter["record"]["_id"] for letter in letters if letter["stage"] == "inference")
    assert failed == ["op-bad-1", "op-bad-2"]


# --- throttling past retry_time_window: FAILED with the last error, the file dead-lettered whole ---


def test_bedrock_throttled_past_the_retry_window_fails_and_dead_letters_the_file(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given Bedrock throttles every create, and a file of 100 valid records and 2 bad lines
    set_faults(throttle_creates=100_000)
    config = configs["e2e-bedrock"]
    body = jsonl(records("bx", BEDROCK_MINIMUM), (b'{"_id": "broken", ', b"not json"))
    # When it is uploaded and StartJob's retries are spent
    job_id = upload(stack, config, f"exhausted-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id, timeout=EXHAUSTED_TIMEOUT)
    # Then the job FAILED with Bedrock's last error, and every record is a dead letter: nothing unaccounted
    assert job["state"] == "FAILED" and "ThrottlingException" in job["reason"], job
    assert (job["records_in"], job["indexed"], job["dead_lettered"]) == (102, 0, 102)
    assert report(stack, job_id)["unaccounted"] == 0
    # And the dead letters are the 2 bad lines at parse and one file-level letter for the 100 valid records
    letters = dead_letters(stack, job_id)
    assert sorted(letter["stage"] for letter in letters) == ["inference", "parse", "parse"]
    (file_level,) = [letter for letter in letters if letter["stage"] == "inference"]
    assert file_level["record"]["records"] == BEDROCK_MINIMUM
    assert "ThrottlingException" in file_level["reason"]
    wait_for_free_slots(jobs, config.name)


def test_openai_throttled_past_the_retry_window_fails_and_dead_letters_the_file(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given every batch fails with token_limit_exceeded, a 5 s retry window, and 3 records and a bad line
    set_faults(throttle_creates=100_000)
    config = configs["e2e-openai-throttle"]
    assert config.inference.retry_time_window_seconds == 5
    # When the file is uploaded and the window passes
    job_id = upload(stack, config, f"exhausted-{time.time_ns()}.jsonl", jsonl(records("ox", 3), (b"{",)))
    job = wait_for_end(jobs, job_id)
    # Then the job FAILED with OpenAI's last error, and records_in = dead_lettered
    assert job["state"] == "FAILED" and "token_limit_exceeded" in job["reason"], job
    assert (job["records_in"], job["indexed"], job["dead_lettered"]) == (4, 0, 4)
    assert report(stack, job_id)["unaccounted"] == 0
    (file_level,) = [letter for letter in dead_letters(stack, job_id) if letter["stage"] == "inference"]
    assert file_level["record"]["records"] == 3 and "token_limit_exceeded" in file_level["reason"]
    wait_for_free_slots(jobs, config.name)


# --- status calls failing: UNREACHABLE ---


@pytest.mark.parametrize(("pipeline", "count"), [("e2e-bedrock", BEDROCK_MINIMUM), ("e2e-openai", 3)])
def test_status_calls_failing_in_a_row_make_the_job_unreachable(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, pipeline: str, count: int
) -> None:
    # Given a service whose every status call fails with a 500
    config = configs[pipeline]
    set_faults(fail_status_calls=100_000)
    body = jsonl(records(f"u{pipeline}", count), (b"not json",))
    # When the file is uploaded and polled max_failed_polls times
    job_id = upload(stack, config, f"unreachable-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then the job is UNREACHABLE after max_failed_polls failed calls, with the last error
    polls = config.inference.polling.max_failed_polls
    assert job["state"] == "UNREACHABLE", job
    assert job["reason"].startswith(f"{polls} status calls failed in a row; last: ")
    # And FailJob ran: the bad line and the file's valid records (one file-level letter) are dead-lettered
    assert (job["records_in"], job.get("indexed", 0), job["dead_lettered"]) == (count + 1, 0, count + 1)
    written = report(stack, job_id)
    assert (written["state"], written["unaccounted"]) == ("UNREACHABLE", 0)
    # And the pipeline's job slot was given back
    wait_for_free_slots(jobs, config.name)


# --- overall timeout: EXPIRED, and the remote job stopped ---


def test_an_openai_job_past_its_timeout_is_expired_and_its_batch_cancelled(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable
) -> None:
    # Given a pipeline whose timeout_hours is seconds, and a batch that stays in progress
    config = configs["e2e-openai-expiry"]
    set_faults(hold_jobs=True)
    # When a file is uploaded and the deadline passes
    job_id = upload(stack, config, f"slow-{time.time_ns()}.jsonl", jsonl(records("oe", 3)))
    job = wait_for_end(jobs, job_id)
    # Then the job is EXPIRED with the reason, its records dead-lettered at file level, its slot free
    assert job["state"] == "EXPIRED" and "timeout_hours" in job["reason"], job
    assert (report(stack, job_id)["dead_lettered"], report(stack, job_id)["unaccounted"]) == (3, 0)
    wait_for_free_slots(jobs, config.name)
    # And the batch was cancelled rather than left running
    ((batch_id,),) = [ref["arn"].split(",") for ref in job["remote_jobs"]]
    assert openai_batch(batch_id)["status"] in {"cancelling", "cancelled"}
