"""PlanIngest, Finalize and FailJob: the steps that keep records_in = indexed + dead_lettered honest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from osbatch.backends.base import THROTTLED_PAST_WINDOW, OutputObject
from osbatch.config import PipelineConfig
from osbatch.dal import ChunkCounts, JobTable
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus, Prepared, RemoteJob
from osbatch.steps.fail_job import fail_job
from osbatch.steps.finalize import TOLERATED_CHUNK, finalize_job
from osbatch.steps.plan_ingest import plan_ingest
from osbatch.steps.support.ports import DeployedPipeline
from osbatch.steps.support.report import JobReport
from tests.unit.fake_backend import ScriptedBackend
from tests.unit.fake_opensearch import FakeClient
from tests.unit.helpers import JOB, SOURCE, job_store

PLAN = "jobs/msmarco-1/plans/00000.json"
REMOTE = RemoteJob(id="osb-msmarco-1", arn="arn:job", output_uri="s3://osb-out/jobs/msmarco-1/output/")


def ingesting(records_in: int = 10, parse_dead: int = 1, chunks: int = 3, **status: Any) -> JobState:
    """A job whose inference completed and whose output was planned into `chunks` chunks."""
    prepared = Prepared(
        input_uri="s3://osb-out/jobs/msmarco-1/input/",
        parts=1,
        records_in=records_in,
        valid=records_in - parse_dead,
        dead_lettered=parse_dead,
        duplicate_ids=2,
    )
    state = status.get("state", JobStateName.COMPLETED)
    return JobState(
        job_id=JOB,
        pipeline="msmarco",
        source=SOURCE,
        prepared=prepared,
        # Planned, so its output is ingested (PlanIngest marks it)
        remotes=[
            REMOTE.model_copy(update={"state": state, "records": records_in - parse_dead, "ingested": True})
        ],
        status=JobStatus(state=state, reason=status.get("reason")),
        plan=IngestPlan(bucket="osb-out", key=PLAN, chunks=chunks, objects=1),
    )


def awaiting_plan() -> JobState:
    """A job whose inference completed and whose output is not planned yet."""
    state = ingesting()
    remotes = [remote.model_copy(update={"ingested": False}) for remote in state.remotes]
    return state.model_copy(update={"plan": None, "remotes": remotes})


def finalize(jobs: JobTable, s3: Any, state: JobState) -> tuple[JobState, JobReport, list[dict[str, Any]]]:
    published: list[dict[str, Any]] = []
    result, report = finalize_job(state, store=job_store(jobs, s3), publish=published.append)
    return result, report, published


def fail(
    jobs: JobTable, s3: Any, state: JobState, backend: ScriptedBackend | None = None
) -> tuple[JobState, JobReport]:
    return fail_job(state, store=job_store(jobs, s3), backend=backend, publish=lambda event: None)


@pytest.fixture
def job(jobs: JobTable) -> JobTable:
    jobs.create(JOB, "msmarco", SOURCE)
    return jobs


def test_plan_cuts_the_outputs_into_chunks_and_marks_the_job_ingesting(
    config: PipelineConfig, job: JobTable, s3: Any
) -> None:
    # Given a completed job with two output objects of 100 and 30 bytes, and 64-byte chunks
    backend = ScriptedBackend(
        output_objects=[
            OutputObject("osb-out", "jobs/msmarco-1/output/part-00000.jsonl.out", 100),
            OutputObject("osb-out", "jobs/msmarco-1/output/part-00001.jsonl.out", 30),
        ]
    )
    cluster = FakeClient()
    state = awaiting_plan()
    # When the ingest is planned
    result = plan_ingest(
        state, pipeline=DeployedPipeline(config, backend, cluster), store=job_store(job, s3), chunk_bytes=64
    )
    # Then the index exists, the plan lists three byte ranges the Map reads, and the job is INGESTING
    assert [index for index, _ in cluster.indices.created] == ["msmarco"]
    items = json.loads(s3.get_object(Bucket="osb-out", Key=PLAN)["Body"].read())
    assert [(item["chunk"], item["key"].rsplit("/", 1)[1], item["start"], item["end"]) for item in items] == [
        (0, "part-00000.jsonl.out", 0, 64),
        (1, "part-00000.jsonl.out", 64, 100),
        (2, "part-00001.jsonl.out", 0, 30),
    ]
    assert result.plan == IngestPlan(bucket="osb-out", key=PLAN, chunks=3, objects=2)
    assert job.get(JOB)["state"] == "INGESTING"  # type: ignore[index]


def test_the_plan_carries_the_pipelines_tolerated_chunk_failures(
    config: PipelineConfig, job: JobTable, s3: Any
) -> None:
    # Given a pipeline that tolerates 5% failed chunks, and a completed job with one output object
    sink = config.sink.model_copy(update={"tolerated_chunk_failure_percentage": 5.0})
    tolerant = config.model_copy(update={"sink": sink})
    backend = ScriptedBackend(output_objects=[OutputObject("osb-out", "jobs/msmarco-1/output/a.out", 10)])
    # When the ingest is planned
    result = plan_ingest(
        awaiting_plan(), pipeline=DeployedPipeline(tolerant, backend, FakeClient()), store=job_store(job, s3)
    )
    # Then the plan carries it where the Distributed Map reads its ToleratedFailurePercentagePath
    assert result.plan is not None
    assert result.dump()["plan"]["tolerated_failure_percentage"] == 5.0


def test_a_job_whose_every_record_is_accounted_for_completes(job: JobTable, s3: Any) -> None:
    # Given 10 records, 1 bad line set aside by Prepare, and 3 chunks that indexed 8 and dead-lettered 1
    for chunk, counts in enumerate([ChunkCounts(4, 4, 0), ChunkCounts(4, 3, 1), ChunkCounts(1, 1, 0)]):
        job.put_chunk(JOB, chunk, counts)
    # When the job is finalized
    result, report, published = finalize(job, s3, ingesting())
    # Then it is COMPLETED with 10 = 8 + 2, and the report, the table and the event all say so
    assert result.status == JobStatus(state=JobStateName.COMPLETED)
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (10, 8, 2, 0)
    assert (report.chunks_planned, report.chunks_reported, report.duplicate_ids) == (3, 3, 2)
    stored = json.loads(s3.get_object(Bucket="osb-out", Key="reports/msmarco-1.json")["Body"].read())
    assert stored == published[0] and stored["state"] == "COMPLETED"
    assert stored["dead_letter_uri"] == "s3://osb-dlq/dead-letter/msmarco-1/"
    row = job.get(JOB)
    assert row is not None
    assert (row["state"], row["indexed"], row["dead_lettered"], row["unaccounted"]) == ("COMPLETED", 8, 2, 0)
    assert row["report"] == "s3://osb-out/reports/msmarco-1.json"


def test_the_report_says_how_many_bulk_requests_were_throttled_and_retried(job: JobTable, s3: Any) -> None:
    # Given 3 chunks whose bulk requests the domain answered 429 five times and twice, the third never
    for chunk, counts in enumerate([ChunkCounts(4, 4, 0, 5), ChunkCounts(4, 3, 1, 2), ChunkCounts(1, 1, 0)]):
        job.put_chunk(JOB, chunk, counts)
    # When the job is finalized
    _, report, published = finalize(job, s3, ingesting())
    # Then the report and its event carry the 7 retried requests, and the records add up as before
    assert report.throttled_requests == 7 and published[0]["throttled_requests"] == 7
    assert (report.indexed, report.dead_lettered, report.unaccounted) == (8, 2, 0)


def test_records_missing_from_the_model_output_make_the_job_partial(job: JobTable, s3: Any) -> None:
    # Given 9 valid records of which the chunks saw only 6 (the model dropped 3)
    for chunk in range(3):
        job.put_chunk(JOB, chunk, ChunkCounts(2, 2, 0))
    # When the job is finalized
    result, report, _ = finalize(job, s3, ingesting())
    # Then it does not claim success: PARTIALLY_COMPLETED with 3 unaccounted and the reason
    assert result.status is not None and result.status.state is JobStateName.PARTIALLY_COMPLETED
    assert report.unaccounted == 3
    assert report.reason == "3 records are unaccounted for (missing from the model output)"


def test_a_tolerated_failed_chunk_is_dead_lettered_and_keeps_the_job_partial(job: JobTable, s3: Any) -> None:
    # Given a plan of 3 chunks where chunk 1 (3 records) never wrote its counts: it failed, and the Map
    # tolerated it (sink.tolerated_chunk_failure_percentage), so the job reached Finalize
    job.put_chunk(JOB, 0, ChunkCounts(5, 5, 0))
    job.put_chunk(JOB, 2, ChunkCounts(1, 1, 0))
    lines = b"".join(b'{"_id": "%d", "_osbatch": {"line": %d}}\n' % (n, n + 1) for n in range(9))
    s3.put_object(Bucket="osb-out", Key="jobs/msmarco-1/output/part-1.out", Body=lines)
    ends = [lines.index(b'{"_id": "5"'), lines.index(b'{"_id": "8"'), len(lines)]
    plan = [
        {"chunk": n, "bucket": "osb-out", "key": "jobs/msmarco-1/output/part-1.out", "start": a, "end": b}
        for n, (a, b) in enumerate(zip([0, *ends[:2]], ends, strict=True))
    ]
    s3.put_object(Bucket="osb-out", Key=PLAN, Body=json.dumps(plan).encode())
    # When the job is finalized
    result, report, _ = finalize(job, s3, ingesting())
    # Then it is PARTIALLY_COMPLETED, and the failed chunk's 3 records are dead letters, not unaccounted
    assert result.status is not None and result.status.state is JobStateName.PARTIALLY_COMPLETED
    assert (report.chunks_planned, report.chunks_reported) == (3, 2)
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (10, 6, 4, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/ingest/00001.jsonl")["Body"].read()
    letters = [json.loads(line) for line in body.splitlines()]
    assert [letter["line"] for letter in letters] == [6, 7, 8]
    assert {letter["reason"] for letter in letters} == {f"not indexed: {TOLERATED_CHUNK}"}
    # And the reason names the chunk and where its byte range is, so it can be replayed
    assert report.reason == (
        "1 of 3 ingest chunks failed (chunk 1; their byte ranges are in the plans at "
        "s3://osb-out/jobs/msmarco-1/plans/); their records are dead-lettered from the chunks' checkpoints"
    )


def test_a_partial_remote_job_stays_partial_even_when_the_counts_add_up(job: JobTable, s3: Any) -> None:
    # Given a backend that reported partial completion, and chunks that account for every record
    job.put_chunk(JOB, 0, ChunkCounts(9, 9, 0))
    state = ingesting(chunks=1, state=JobStateName.PARTIALLY_COMPLETED, reason="2 of 9 requests failed")
    # When the job is finalized
    result, report, _ = finalize(job, s3, state)
    # Then the backend's word is kept (ML Commons would report COMPLETED here)
    assert result.status == JobStatus(state=JobStateName.PARTIALLY_COMPLETED, reason="2 of 9 requests failed")
    assert report.unaccounted == 0


def test_a_file_with_no_valid_record_completes_with_what_prepare_counted(job: JobTable, s3: Any) -> None:
    # Given a job whose 3 lines were all bad, so no inference ran and there is no plan
    state = ingesting(records_in=3, parse_dead=3).model_copy(update={"plan": None, "remotes": []})
    # When it is finalized
    _, report, _ = finalize(job, s3, state)
    # Then 3 = 0 + 3, and it is COMPLETED
    assert (report.state, report.indexed, report.dead_lettered, report.unaccounted) == ("COMPLETED", 0, 3, 0)


def test_a_failed_map_reports_what_its_chunks_had_already_indexed(job: JobTable, s3: Any) -> None:
    # Given a Map that failed after two of its three chunks indexed 6 documents and dead-lettered 1,
    # the third chunk (2 records of model output) never having reported
    job.put_chunk(JOB, 0, ChunkCounts(4, 4, 0))
    job.put_chunk(JOB, 1, ChunkCounts(3, 2, 1))
    third = b'{"_id": "8", "_osbatch": {"line": 9}}\n{"_id": "9", "_osbatch": {"line": 10}}\n'
    s3.put_object(Bucket="osb-out", Key="jobs/msmarco-1/output/part-1.out", Body=b"x" * 99 + b"\n" + third)
    plan = [
        {
            "chunk": n,
            "bucket": "osb-out",
            "key": "jobs/msmarco-1/output/part-1.out",
            "start": start,
            "end": end,
        }
        for n, (start, end) in enumerate([(0, 50), (50, 100), (100, 100 + len(third))])
    ]
    s3.put_object(Bucket="osb-out", Key=PLAN, Body=json.dumps(plan).encode())
    cause = json.dumps({"errorMessage": "ConnectionError: the cluster went away", "errorType": "X"})
    state = ingesting().model_copy(
        update={"error": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": cause}}
    )
    backend = ScriptedBackend()
    # When the job is failed
    result, report = fail(job, s3, state, backend)
    # Then it is FAILED with the readable cause, the 6 indexed documents are reported, and the last
    # chunk's 2 records are dead letters carrying the failure, so nothing is unaccounted and all can be
    # replayed; the finished remote job is left alone
    assert result.status is not None and result.status.state is JobStateName.FAILED
    assert report.reason == "States.ExceedToleratedFailureThreshold: ConnectionError: the cluster went away"
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (10, 6, 4, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/ingest/00002.jsonl")["Body"].read()
    dead = [json.loads(line) for line in body.splitlines()]
    assert [(d["line"], d["stage"]) for d in dead] == [(9, "index"), (10, "index")]
    assert dead[0]["reason"] == f"not indexed: the job failed ({report.reason})"
    assert backend.cancelled == []
    assert job.get(JOB)["indexed"] == 6  # type: ignore[index]


def test_a_step_failure_stops_a_remote_job_that_is_still_running(job: JobTable, s3: Any) -> None:
    # Given PollJob failed for good while the remote job runs
    state = ingesting(state=JobStateName.RUNNING).model_copy(
        update={"plan": None, "error": {"Error": "Lambda.Unknown", "Cause": "boom"}}
    )
    backend = ScriptedBackend()
    # When the job is failed
    _, report = fail(job, s3, state, backend)
    # Then the remote job is stopped, and the 9 valid records are dead-lettered with the file (none indexed)
    assert backend.cancelled == ["osb-msmarco-1"]
    assert (report.indexed, report.dead_lettered, report.unaccounted) == (0, 10, 0)


def test_a_remote_failure_is_reported_with_the_backends_reason(job: JobTable, s3: Any) -> None:
    # Given a remote job that failed on its own, and chunk items left by an earlier run of this job
    job.put_chunk(JOB, 0, ChunkCounts(9, 9, 0))
    state = ingesting(state=JobStateName.FAILED, reason="ClientError: model not found").model_copy(
        update={"plan": None}
    )
    # When the job is failed
    _, report = fail(job, s3, state)
    # Then the backend's reason and state are kept, and the stale chunk items are not counted as indexed
    assert (report.state, report.reason) == ("FAILED", "ClientError: model not found")
    assert (report.indexed, report.dead_lettered, report.unaccounted) == (0, 10, 0)


@pytest.mark.parametrize("ending", ["FAILED", "EXPIRED", "UNREACHABLE", "CANCELLED"])
def test_a_job_that_ends_before_ingest_dead_letters_its_file_with_the_failure(
    job: JobTable, s3: Any, ending: str
) -> None:
    # Given a remote job that ended without output to ingest (no plan), 9 valid records and 1 bad line
    state = ingesting(state=JobStateName(ending), reason=f"the job is {ending}").model_copy(
        update={"plan": None}
    )
    # When the job is failed
    _, report = fail(job, s3, state)
    # Then every record is accounted for: the bad line as before, the 9 valid ones in one file-level letter
    assert (report.state, report.records_in, report.indexed) == (ending, 10, 0)
    assert (report.dead_lettered, report.unaccounted) == (10, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/inference/00000.jsonl")["Body"].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert (letter["stage"], letter["reason"]) == ("inference", f"the job is {ending}")
    assert letter["record"] == {
        "file": SOURCE.uri,
        "records": 9,
        "prepared_input": "s3://osb-out/jobs/msmarco-1/input/",
        "model_output": [REMOTE.output_uri],
    }
    assert job.get(JOB)["unaccounted"] == 0  # type: ignore[index]


def test_a_plan_that_fails_after_inference_dead_letters_the_file_at_stage_index(
    job: JobTable, s3: Any
) -> None:
    # Given the model finished, then PlanIngest failed for good (the index was remapped meanwhile)
    state = ingesting().model_copy(
        update={"plan": None, "error": {"Error": "IndexConflict", "Cause": "chunk_embedding is text"}}
    )
    # When the job is failed
    _, report = fail(job, s3, state)
    # Then the file's valid records are one letter at stage index, naming the model output to ingest later
    assert (report.dead_lettered, report.unaccounted) == (10, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/index/00000.jsonl")["Body"].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert letter["stage"] == "index" and letter["reason"] == "IndexConflict: chunk_embedding is text"
    assert letter["record"]["model_output"] == [REMOTE.output_uri]


def test_records_the_output_lacks_are_dead_lettered_and_the_job_is_partial(job: JobTable, s3: Any) -> None:
    # Given PlanIngest dead-lettered 2 records the model output lacked, and the chunks took the other 7
    state = ingesting(chunks=1)
    assert state.plan is not None
    state = state.model_copy(update={"plan": state.plan.model_copy(update={"dead_lettered": 2})})
    job.put_chunk(JOB, 0, ChunkCounts(7, 7, 0))
    # When the job finalizes
    _, report, _ = finalize(job, s3, state)
    # Then nothing is unaccounted, and the job says why it is partial
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (10, 7, 3, 0)
    assert report.state == "PARTIALLY_COMPLETED"
    assert "2 records are missing from the model output" in (report.reason or "")


@pytest.mark.parametrize("ending", ["finalize", "fail"])
def test_every_terminal_state_gives_the_job_slot_back(job: JobTable, s3: Any, ending: str) -> None:
    # Given the job holds one of its pipeline's slots, as StartJob leaves it
    assert job.acquire_slot("msmarco", JOB, 1, 0.0)
    assert not job.acquire_slot("msmarco", "msmarco-other", 1, 0.0)
    # When it finalizes, or fails (a cancel ends in fail-job too)
    if ending == "finalize":
        finalize(job, s3, ingesting(chunks=0))
    else:
        fail(job, s3, ingesting(state=JobStateName.CANCELLED).model_copy(update={"plan": None}))
    # Then the slot is free for the next job
    assert job.slot_holders("msmarco") == set()
    assert job.acquire_slot("msmarco", "msmarco-other", 1, 0.0)


def test_throttling_past_the_window_fails_the_job_and_dead_letters_the_file(job: JobTable, s3: Any) -> None:
    # Given StartJob's throttling retries are spent
    error = {
        "Error": "BackendThrottled",
        "Cause": json.dumps({"errorMessage": "Bedrock ThrottlingException: slow down"}),
    }
    state = ingesting(state=JobStateName.CREATED).model_copy(
        update={"plan": None, "remotes": [], "error": error}
    )
    # When the job is failed
    _, report = fail(job, s3, state)
    # Then it is FAILED with the last error, and the file's 9 valid records are one file-level dead letter
    assert (report.state, report.reason) == (
        "FAILED",
        "BackendThrottled: Bedrock ThrottlingException: slow down",
    )
    assert (report.records_in, report.dead_lettered, report.unaccounted) == (10, 10, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/inference/00000.jsonl")["Body"].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert letter["stage"] == "inference" and letter["record"]["records"] == 9
    assert letter["record"]["file"] == SOURCE.uri


def test_a_created_job_refused_past_the_window_dead_letters_the_file_too(job: JobTable, s3: Any) -> None:
    # Given a job the service failed for throttling after it was created, past the retry window
    status = JobStatus(
        state=JobStateName.FAILED,
        reason="token_limit_exceeded: Enqueued token limit reached",
        progress={THROTTLED_PAST_WINDOW: True},
    )
    state = ingesting(state=JobStateName.RUNNING).model_copy(update={"plan": None, "status": status})
    # When the job is failed
    _, report = fail(job, s3, state)
    # Then it is FAILED with that error, and the file's valid records are one file-level dead letter
    assert (report.state, report.reason) == ("FAILED", "token_limit_exceeded: Enqueued token limit reached")
    assert (report.records_in, report.dead_lettered, report.unaccounted) == (10, 10, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/inference/00000.jsonl")["Body"].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert letter["reason"] == report.reason and letter["record"]["records"] == 9


def test_a_job_the_service_failed_before_ingest_dead_letters_its_file_with_the_reason(
    job: JobTable, s3: Any
) -> None:
    # Given a job the service failed for a reason other than throttling, before any chunk ran
    status = JobStatus(state=JobStateName.FAILED, reason="validation: bad input")
    state = ingesting(state=JobStateName.RUNNING).model_copy(update={"plan": None, "status": status})
    # When the job is failed
    _, report = fail(job, s3, state)
    # Then its 9 valid records are one file-level dead letter (next to the 1 parse failure), none unaccounted
    assert (report.dead_lettered, report.unaccounted) == (10, 0)
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/inference/00000.jsonl")["Body"].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert letter["reason"].endswith("validation: bad input") and letter["record"]["records"] == 9


def relaxed_for_loading(config: PipelineConfig, job: JobTable, s3: Any) -> tuple[FakeClient, JobState]:
    """A job whose PlanIngest relaxed a new index for loading: the cluster, and the state PlanIngest left."""
    cluster = FakeClient()
    s3.put_object(Bucket="osb-out", Key="jobs/msmarco-1/output/p.out", Body=b'{"_id": 1}\n')
    backend = ScriptedBackend(output_objects=[OutputObject("osb-out", "jobs/msmarco-1/output/p.out", 10)])
    state = plan_ingest(
        awaiting_plan(), pipeline=DeployedPipeline(config, backend, cluster), store=job_store(job, s3)
    )
    return cluster, state


def test_a_failed_load_still_restores_the_index_settings(
    config: PipelineConfig, job: JobTable, s3: Any
) -> None:
    # Given a job whose PlanIngest relaxed a new index for loading
    from osbatch.search.bulk_load import IndexLoad

    cluster, state = relaxed_for_loading(config, job, s3)
    assert cluster.indices.settings["msmarco"]["refresh_interval"] == "-1"

    # When the Map fails and FailJob runs
    failed = state.model_copy(update={"error": {"Error": "States.TaskFailed", "Cause": "chunk 0 died"}})
    fail_job(
        failed,
        store=job_store(job, s3),
        backend=None,
        publish=lambda event: None,
        index_load=IndexLoad(cluster, "msmarco"),
    )

    # Then refresh and replicas are back to what the index had
    assert cluster.indices.settings["msmarco"] == {"number_of_replicas": "1"}
    assert cluster.indices.refreshed == ["msmarco"]


def three_remote_jobs(states: list[JobStateName]) -> JobState:
    """30 valid records in three remote jobs of 10, with one output object each."""
    remotes = [
        RemoteJob(
            id=f"osb-msmarco-1-{n:03d}",
            arn=f"arn:job/{n}",
            output_uri=f"s3://osb-out/jobs/msmarco-1/output/job-{n:05d}/",
            index=n,
            records=10,
            state=state,
            reason="All 10 records failed" if state is JobStateName.FAILED else None,
        )
        for n, state in enumerate(states)
    ]
    prepared = Prepared(
        input_uri="s3://osb-out/jobs/msmarco-1/input/", parts=3, records_in=31, valid=30, dead_lettered=1
    )
    return JobState(
        job_id=JOB, pipeline="msmarco", source=SOURCE, prepared=prepared, remotes=remotes, status=None
    )


def test_each_finished_remote_job_is_planned_once_and_chunk_numbers_run_on(
    config: PipelineConfig, job: JobTable, s3: Any
) -> None:
    # Given three remote jobs with one output object each, the first finished and the others running
    backend = ScriptedBackend(
        output_objects=[
            OutputObject("osb-out", f"jobs/msmarco-1/output/job-{n:05d}/part-{n:05d}.jsonl.out", 100)
            for n in range(3)
        ]
    )
    state = three_remote_jobs([JobStateName.COMPLETED, JobStateName.RUNNING, JobStateName.RUNNING])
    cluster = FakeClient()

    def plan(state: JobState) -> JobState:
        pipeline = DeployedPipeline(config, backend, cluster)
        return plan_ingest(state, pipeline=pipeline, store=job_store(job, s3), chunk_bytes=64)

    # When the first is planned
    first = plan(state)
    # Then its two chunks are 0 and 1 in plan 0, and it is marked ingested
    assert first.plan == IngestPlan(bucket="osb-out", key=PLAN, chunks=2, objects=1, first=0, number=0)
    assert [remote.ingested for remote in first.remotes] == [True, False, False]
    assert cluster.indices.refreshed == []
    # When the other two finish and are planned together
    done = [remote.model_copy(update={"state": JobStateName.COMPLETED}) for remote in first.remotes]
    second = plan(first.model_copy(update={"remotes": done}))
    # Then plan 1 holds only their outputs, as chunks 2..5, and Finalize will sum chunks 0..5
    assert second.plan is not None and (second.plan.first, second.plan.chunks, second.plan.number) == (
        2,
        6,
        1,
    )
    items = json.loads(s3.get_object(Bucket="osb-out", Key=second.plan.key)["Body"].read())
    assert [(item["chunk"], item["key"].rsplit("/", 1)[1]) for item in items] == [
        (2, "part-00001.jsonl.out"),
        (3, "part-00001.jsonl.out"),
        (4, "part-00002.jsonl.out"),
        (5, "part-00002.jsonl.out"),
    ]
    assert all(remote.ingested for remote in second.remotes)
    # And the relaxed index was refreshed first, so the first remote job's documents are searchable
    assert cluster.indices.refreshed == ["msmarco"]
    # And a third plan with nothing new finished plans nothing again
    third = plan(second)
    assert third.plan is not None and (third.plan.first, third.plan.chunks) == (6, 6)


def test_a_failed_remote_job_among_completed_ones_is_dead_lettered_at_file_level(
    job: JobTable, s3: Any
) -> None:
    # Given 31 records (1 bad line), three remote jobs of 10: the second FAILED, the others completed and
    # their chunks indexed 10 and 9 (1 dead-lettered at index)
    from osbatch.steps.support.remote_jobs import overall_status

    state = three_remote_jobs([JobStateName.COMPLETED, JobStateName.FAILED, JobStateName.COMPLETED])
    state = state.model_copy(
        update={
            "status": overall_status(state.remotes, {}),
            "plan": IngestPlan(bucket="osb-out", key="jobs/msmarco-1/plans/00001.json", chunks=2, objects=2),
        }
    )
    job.put_chunk(JOB, 0, ChunkCounts(10, 10, 0))
    job.put_chunk(JOB, 1, ChunkCounts(10, 9, 1))
    # When the job is finalized
    result, report, _ = finalize(job, s3, state)
    # Then it is PARTIALLY_COMPLETED, the failed part's 10 records are dead-lettered, and nothing is lost
    assert result.status is not None and result.status.state is JobStateName.PARTIALLY_COMPLETED
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (31, 19, 12, 0)
    assert report.reason == "remote job 2 of 3 (osb-msmarco-1-001) FAILED: All 10 records failed"
    assert report.remote_jobs == ["arn:job/0", "arn:job/1", "arn:job/2"]
    # And one file-level dead letter at stage inference stands for the failed part, with its error
    body = s3.get_object(Bucket="osb-dlq", Key="dead-letter/msmarco-1/inference/job-00001.jsonl")[
        "Body"
    ].read()
    (letter,) = [json.loads(line) for line in body.splitlines()]
    assert (letter["stage"], letter["record"]["records"], letter["record"]["remote_job"]) == (
        "inference",
        10,
        "arn:job/1",
    )
    assert letter["reason"] == "remote job osb-msmarco-1-001 FAILED: All 10 records failed"
    assert job.get(JOB)["dead_lettered"] == 12  # type: ignore[index]


def test_a_failed_start_stops_the_remote_jobs_it_had_created(job: JobTable, s3: Any) -> None:
    # Given StartJob created two remote jobs, then was throttled past its window (the state has none)
    refs = [{"id": f"osb-msmarco-1-00{n}", "arn": f"arn:{n}", "output_uri": "s3://o/"} for n in range(2)]
    job.update(JOB, JobStateName.RUNNING, remote_jobs=refs)
    state = ingesting(state=JobStateName.RUNNING).model_copy(
        update={
            "plan": None,
            "remotes": [],
            "status": None,
            "error": {"Error": "BackendThrottled", "Cause": "x"},
        }
    )
    backend = ScriptedBackend()
    # When the job is failed
    fail(job, s3, state, backend)
    # Then both are stopped: none keeps running unobserved
    assert backend.cancelled == ["osb-msmarco-1-000", "osb-msmarco-1-001"]


def test_a_job_failing_after_some_remote_jobs_were_ingested_dead_letters_the_others(
    job: JobTable, s3: Any
) -> None:
    # Given 31 records (1 bad line) in three remote jobs of 10: the first completed and its chunk indexed
    # all 10, the other two still running when a later step failed for good
    state = three_remote_jobs([JobStateName.COMPLETED, JobStateName.RUNNING, JobStateName.RUNNING])
    remotes = [state.remotes[0].model_copy(update={"ingested": True}), *state.remotes[1:]]
    plan = IngestPlan(bucket="osb-out", key="jobs/msmarco-1/plans/00000.json", chunks=1, objects=1)
    error = {"Error": "Lambda.Unknown", "Cause": "boom"}
    state = state.model_copy(update={"remotes": remotes, "plan": plan, "error": error})
    job.put_chunk(JOB, 0, ChunkCounts(10, 10, 0))
    backend = ScriptedBackend()
    # When the job is failed
    result, report = fail(job, s3, state, backend)
    # Then the two running remote jobs are stopped
    assert sorted(backend.cancelled) == ["osb-msmarco-1-001", "osb-msmarco-1-002"]
    # And their 20 records are dead-lettered at file level, one letter each, so nothing is unaccounted
    assert result.status is not None and result.status.state is JobStateName.FAILED
    assert (report.records_in, report.indexed, report.dead_lettered, report.unaccounted) == (31, 10, 21, 0)
    for n in (1, 2):
        key = f"dead-letter/msmarco-1/inference/job-{n:05d}.jsonl"
        (letter,) = [
            json.loads(line) for line in s3.get_object(Bucket="osb-dlq", Key=key)["Body"].read().splitlines()
        ]
        assert letter["record"]["records"] == 10
        assert letter["reason"] == "not ingested: the job ended (Lambda.Unknown: boom)"


def test_a_job_failed_while_the_node_is_down_still_ends_and_owes_the_restore(
    config: PipelineConfig, job: JobTable, s3: Any
) -> None:
    # Given a job whose PlanIngest relaxed a new index for loading, and whose Map then failed because
    # the node stopped answering
    from osbatch.search.bulk_load import IndexLoad

    cluster, state = relaxed_for_loading(config, job, s3)
    cluster.indices.down = True
    failed = state.model_copy(update={"error": {"Error": "ConnectionError", "Cause": "the node went away"}})

    # When FailJob runs with the node still down
    result, report = fail_job(
        failed,
        store=job_store(job, s3),
        backend=None,
        publish=lambda event: None,
        index_load=IndexLoad(cluster, "msmarco"),
    )

    # Then the job ends FAILED with its report, whose reason says the settings are left relaxed and why
    assert result.status is not None and result.status.state is JobStateName.FAILED
    assert report.reason is not None and report.reason.startswith("ConnectionError: the node went away; ")
    assert "stay as the load set them" in report.reason and "Failed to establish" in report.reason
    assert job.get(JOB)["state"] == "FAILED"  # type: ignore[index]
    # And the restore is owed: the next job into the index, which the chunks had filled, makes it
    cluster.indices.down, cluster.docs = False, 6
    assert not IndexLoad(cluster, "msmarco").begin(job, "msmarco-2")
    assert cluster.indices.settings["msmarco"] == {"number_of_replicas": "1"}
