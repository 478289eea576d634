"""Records a SageMaker-style output lacks (it carries its records, so nothing joins it): found at Finalize by
diffing the short parts' line numbers, dead-lettered, so records_in = indexed + dead_lettered still holds."""

from __future__ import annotations

import json
from typing import Any

from osbatch.backends.base import InputLimits, JobLimits
from osbatch.contracts import job_input_prefix, job_output_prefix, job_parts_key, plan_key, plan_name
from osbatch.dal import ChunkCounts, JobStore, JobTable
from osbatch.ingest.readers import iter_chunk_lines, plan_chunks
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus, Prepared, PreparedJob, RemoteJob
from osbatch.steps.fail_job import fail_job
from osbatch.steps.finalize import finalize_job
from osbatch.steps.support.dropped import NOT_DIFFED, UNMATCHED, dead_letter_dropped
from osbatch.steps.support.parts import PartWriter, write_parts_list
from osbatch.steps.support.report import JobReport
from tests.unit.fake_backend import ScriptedBackend
from tests.unit.helpers import JOB, SOURCE

OUT, DLQ = "osb-out", "osb-dlq"
OUTPUT = f"s3://{OUT}/{job_output_prefix(JOB)}job-00000/"
RECORDS_PER_PART = 4


def record(line: int) -> dict[str, Any]:
    return {"_id": f"d{line}", "text": f"text of line {line}"}


class Job:
    """A job of `records` valid lines, prepared into parts of 4 and sent to one transform job."""

    def __init__(self, s3: Any, jobs: JobTable, records: int) -> None:
        self.s3, self.jobs, self.records = s3, jobs, records
        writer = PartWriter(
            s3, OUT, job_input_prefix(JOB), InputLimits(RECORDS_PER_PART, 2**20), JobLimits(10**6, 2**30)
        )
        for line in range(1, records + 1):
            # SageMakerBackend.input_line: the record, and its line for JoinSource=Input to bring back
            writer.write({**record(line), "_osbatch": {"line": line}})
        writer.close()
        write_parts_list(s3, OUT, job_parts_key(JOB), writer.parts_list())
        self.reads: list[str] = []
        jobs.create(JOB, "msmarco", SOURCE)

    def transform(
        self,
        dropped: frozenset[int] = frozenset(),
        broken: frozenset[int] = frozenset(),
        skip_parts: frozenset[int] = frozenset(),
    ) -> None:
        """The model output, one `.out` per part: dropped lines have none, broken ones are not JSON."""
        for part in range((self.records + RECORDS_PER_PART - 1) // RECORDS_PER_PART):
            if part in skip_parts:
                continue  # the job wrote no output object for this part
            lines = []
            for line in range(
                part * RECORDS_PER_PART + 1, min((part + 1) * RECORDS_PER_PART, self.records) + 1
            ):
                if line in dropped:
                    continue
                joined = {**record(line), "_osbatch": {"line": line}, "SageMakerOutput": [0.5, 0.25]}
                lines.append(b'{"_id": "broken' if line in broken else json.dumps(joined).encode())
            key = f"{job_output_prefix(JOB)}job-00000/part-{part:05d}.jsonl.out"
            self.s3.put_object(Bucket=OUT, Key=key, Body=b"".join(line + b"\n" for line in lines))

    def ingest(self, chunk_bytes: int = 300) -> JobState:
        """PlanIngest's plan of the output, and each chunk's counts as ingest_chunk records them."""
        listed = self.s3.list_objects_v2(Bucket=OUT, Prefix=job_output_prefix(JOB)).get("Contents", [])
        items = [
            {"chunk": number, "bucket": OUT, **chunk}
            for number, chunk in enumerate(plan_chunks([(o["Key"], o["Size"]) for o in listed], chunk_bytes))
        ]
        self.s3.put_object(Bucket=OUT, Key=plan_key(JOB, plan_name(0)), Body=json.dumps(items).encode())
        for item in items:
            lines = [
                raw for _, raw in iter_chunk_lines(self.s3, OUT, item["key"], item["start"], item["end"])
            ]
            bad = sum(not raw.endswith(b"}") for raw in lines)
            self.jobs.put_chunk(JOB, item["chunk"], ChunkCounts(len(lines), len(lines) - bad, bad))
        prepared = Prepared(
            input_uri=f"s3://{OUT}/{job_input_prefix(JOB)}",
            parts=(self.records + RECORDS_PER_PART - 1) // RECORDS_PER_PART,
            records_in=self.records,
            valid=self.records,
            dead_lettered=0,
            jobs=[PreparedJob(index=0, input_uri=OUTPUT, parts=1, records=self.records, bytes=0)],
        )
        remote = RemoteJob(
            id="osb-msmarco-1-000", output_uri=OUTPUT, records=self.records, state="COMPLETED", ingested=True
        )
        return JobState(
            job_id=JOB,
            pipeline="msmarco",
            source=SOURCE,
            prepared=prepared,
            remotes=[remote],
            status=JobStatus(state=JobStateName.COMPLETED),
            plan=IngestPlan(
                bucket=OUT, key=plan_key(JOB, plan_name(0)), chunks=len(items), objects=len(listed)
            ),
        )

    def spy_reads(self) -> None:
        """Record the key of every whole read of a part or an output (the diff's), from here on."""
        get_object = self.s3.get_object
        data = (job_input_prefix(JOB), job_output_prefix(JOB))

        def recorded(**request: Any) -> Any:
            if "Range" not in request and request["Key"].startswith(data):
                self.reads.append(request["Key"])
            return get_object(**request)

        self.s3.get_object = recorded

    def finalize(self, state: JobState) -> JobReport:
        _, report = finalize_job(
            state, store=JobStore(self.jobs, self.s3, OUT, DLQ), publish=lambda event: None, diff_output=True
        )
        return report

    def letters(self, part: int) -> list[dict[str, Any]]:
        key = f"dead-letter/{JOB}/inference/part-{part:05d}.jsonl"
        return [json.loads(line) for line in self.s3.get_object(Bucket=DLQ, Key=key)["Body"].iter_lines()]


def test_records_the_output_lacks_are_dead_letters_with_their_lines_and_nothing_is_unaccounted(
    s3: Any, jobs: JobTable
) -> None:
    # Given 12 records in three parts, and a transform job whose output lacks lines 6 and 7 of the second
    job = Job(s3, jobs, 12)
    job.transform(dropped=frozenset({6, 7}))
    state = job.ingest()
    job.spy_reads()

    # When the job is finalized
    report = job.finalize(state)

    # Then the two records are dead letters with their lines and the records as the user wrote them
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (12, 10, 2, 0)
    letters = job.letters(1)
    assert [(d["line"], d["stage"], d["record"]) for d in letters] == [
        (6, "inference", record(6)),
        (7, "inference", record(7)),
    ]
    assert letters[0]["reason"].startswith("missing from model output")
    # And the job says it is partial, and why
    assert report.state == "PARTIALLY_COMPLETED"
    assert report.reason == "2 records are missing from the model output (dead-lettered at stage inference)"
    # And only the short part and its output were read again
    assert job.reads == [
        f"{job_input_prefix(JOB)}job-00000/part-00001.jsonl",
        f"{job_output_prefix(JOB)}job-00000/part-00001.jsonl.out",
        f"{job_input_prefix(JOB)}job-00000/part-00001.jsonl",
    ]


def test_a_part_whose_output_object_is_missing_has_every_record_dead_lettered(
    s3: Any, jobs: JobTable
) -> None:
    # Given a transform job that wrote no output object for the last of three parts
    job = Job(s3, jobs, 10)
    job.transform(skip_parts=frozenset({2}))

    # When the job is finalized
    report = job.finalize(job.ingest())

    # Then that part's two records are dead letters
    assert (report.indexed, report.dead_lettered, report.unaccounted) == (8, 2, 0)
    assert [d["line"] for d in job.letters(2)] == [9, 10]


def test_a_complete_output_is_never_read_again(s3: Any, jobs: JobTable) -> None:
    # Given an output with every record
    job = Job(s3, jobs, 8)
    job.transform()
    state = job.ingest()
    job.spy_reads()

    # When the job is finalized
    report = job.finalize(state)

    # Then it completes without reading any part or output
    assert (report.state, report.indexed, report.unaccounted) == ("COMPLETED", 8, 0)
    assert job.reads == []


def test_a_broken_output_line_is_not_guessed_at_the_part_is_one_file_level_letter(
    s3: Any, jobs: JobTable
) -> None:
    # Given an output that lacks line 2 and whose line 3 is not JSON (its chunk dead-lettered it at parse)
    job = Job(s3, jobs, 4)
    job.transform(dropped=frozenset({2}), broken=frozenset({3}))
    state = job.ingest()

    # When the job is finalized
    report = job.finalize(state)

    # Then the one missing record is one file-level letter naming the part and its output, since the diff
    # cannot tell line 2 from line 3
    assert (report.indexed, report.dead_lettered, report.unaccounted) == (2, 2, 0)
    (letter,) = job.letters(0)
    assert letter["record"]["records"] == 1
    assert (
        letter["record"]["prepared_input"] == f"s3://{OUT}/{job_input_prefix(JOB)}job-00000/part-00000.jsonl"
    )
    assert letter["record"]["model_output"] == [
        f"s3://{OUT}/{job_output_prefix(JOB)}job-00000/part-00000.jsonl.out"
    ]
    assert UNMATCHED in letter["reason"]


def test_past_the_read_budget_a_short_part_is_dead_lettered_at_file_level(s3: Any, jobs: JobTable) -> None:
    # Given a part with a dropped record, and no budget left to read its output
    job = Job(s3, jobs, 8)
    job.transform(dropped=frozenset({5}))
    state = job.ingest()
    tally = jobs.chunk_totals(JOB, state.plan.chunks if state.plan else 0)

    # When the dropped records are dead-lettered
    dropped = dead_letter_dropped(state, tally, store=JobStore(jobs, s3, OUT, DLQ), budget_bytes=0)

    # Then the shortfall is one letter that stands for it, and says why it was not diffed
    assert dropped == 1
    (letter,) = job.letters(1)
    assert (letter["record"]["records"], letter["stage"]) == (1, "inference")
    assert NOT_DIFFED in letter["reason"]


def test_finalizing_again_writes_the_same_letters_and_counts(s3: Any, jobs: JobTable) -> None:
    # Given a finalized job that lacked one record
    job = Job(s3, jobs, 8)
    job.transform(dropped=frozenset({1}))
    state = job.ingest()
    first = job.finalize(state)

    # When Finalize runs again (a retried step)
    second = job.finalize(state)

    # Then nothing is counted twice
    assert (second.dead_lettered, second.unaccounted) == (first.dead_lettered, first.unaccounted) == (1, 0)
    assert [d["line"] for d in job.letters(0)] == [1]


def test_a_job_failing_after_its_output_was_ingested_dead_letters_what_the_output_lacked(
    s3: Any, jobs: JobTable
) -> None:
    # Given a job whose ingested output lacked one record, and which then failed (the index load, say)
    job = Job(s3, jobs, 8)
    job.transform(dropped=frozenset({8}))
    state = job.ingest().model_copy(update={"error": {"Error": "States.TaskFailed", "Cause": "boom"}})
    backend = ScriptedBackend([])  # its output carries its records: joins_source is False

    # When FailJob runs
    _, report = fail_job(
        state, store=JobStore(jobs, s3, OUT, DLQ), backend=backend, publish=lambda event: None
    )

    # Then the record is a dead letter too
    assert (report.state, report.indexed, report.dead_lettered, report.unaccounted) == ("FAILED", 7, 1, 0)
    assert [d["line"] for d in job.letters(1)] == [8]


def test_a_job_prepared_without_a_parts_list_keeps_its_shortfall_unaccounted(s3: Any, jobs: JobTable) -> None:
    # Given a job prepared before Prepare wrote the parts list, whose output lacks a record
    job = Job(s3, jobs, 4)
    job.transform(dropped=frozenset({2}))
    state = job.ingest()
    s3.delete_object(Bucket=OUT, Key=job_parts_key(JOB))

    # When the job is finalized
    report = job.finalize(state)

    # Then the record is reported unaccounted, as before, rather than failing the step
    assert (report.state, report.dead_lettered, report.unaccounted) == ("PARTIALLY_COMPLETED", 0, 1)
