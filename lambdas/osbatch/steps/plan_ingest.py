"""PlanIngest: the model output of the remote jobs that finished (or a batch request's files) cut into the
chunk plan the Distributed Map ingests.

A joining backend's output (Bedrock, OpenAI) is first joined onto the source records Prepare kept
(steps/support/join.py), which also dead-letters the records the service silently dropped. Each finished
remote job's output is planned once; chunk numbers run on across plans, so the chunk items 0 .. chunks - 1
are every plan's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from osbatch.batch_ingestion.job import BatchTargetError, load_staged
from osbatch.contracts import (
    INFERENCE_DEAD_LETTERS,
    LINE_BITS,
    dead_letter_key,
    job_joined_prefix,
    job_source_prefix,
    plan_key,
    plan_name,
)
from osbatch.dal import JobStore
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import plan_chunks
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus
from osbatch.search.bulk_load import begin_bulk_load
from osbatch.search.index import ensure_compatible_index
from osbatch.steps.support.join import join_outputs
from osbatch.steps.support.passages import keeps_source, passage_joiner
from osbatch.steps.support.ports import DeployedPipeline

DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024  # one ingest Lambda streams and bulks this in well under a minute


def plan_ingest(
    state: JobState,
    *,
    pipeline: DeployedPipeline,
    store: JobStore,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    clock: Callable[[], float] = time.time,
) -> JobState:
    """Plan the chunks of the output the finished remote jobs wrote, or of a batch request's files."""
    if state.batch is not None:
        return plan_batch_ingest(state, pipeline=pipeline, store=store, chunk_bytes=chunk_bytes, clock=clock)
    assert state.remotes, "PlanIngest runs after StartJob"
    config, backend, opensearch = pipeline.config, pipeline.backend, pipeline.opensearch
    jobs, s3, output_bucket = store.table, store.s3, store.output_bucket
    # Prepare created or checked the index before the job was paid for; a job can run for days, so check
    # again (one request) rather than bulk into an index someone deleted or remapped meanwhile.
    ensure_compatible_index(opensearch, config.sink.index, config.sink.mapping)
    if config.sink.bulk.relax_new_index:
        begin_bulk_load(opensearch, jobs, config.sink.index, state.job_id)
        if state.plan is not None:
            # A relaxed index (refresh_interval -1) shows nothing until refreshed: the earlier remote jobs'
            # documents become searchable now, as each later one starts ingesting, not only at Finalize.
            opensearch.indices.refresh(index=config.sink.index)
    # Only the remote jobs that finished since the last plan: each remote job's output is planned once.
    ready = [remote for remote in state.remotes if remote.succeeded and not remote.ingested]
    outputs = [output for remote in ready for output in backend.outputs(remote)]
    previous = state.plan
    objects_before = previous.objects if previous else 0
    missing = 0
    input_tokens = previous.input_tokens if previous else None
    joiner = passage_joiner(config)
    if keeps_source(config, backend):

        def dead_letters(number: int) -> DeadLetterWriter:
            # Numbered across plans, so a later plan's letters never overwrite an earlier one's.
            key = dead_letter_key(state.job_id, INFERENCE_DEAD_LETTERS, objects_before + number)
            return DeadLetterWriter(
                s3, store.dead_letter_bucket, key, job_id=state.job_id, source=state.source.uri
            )

        joined = join_outputs(
            backend,
            s3,
            outputs,
            source_bucket=output_bucket,
            source_prefix=job_source_prefix(state.job_id),
            joined_prefix=job_joined_prefix(state.job_id),
            dead_letters=dead_letters,
            join_part=joiner,
        )
        outputs, missing = joined.outputs, joined.missing
        if joined.input_tokens is not None:
            input_tokens = (input_tokens or 0) + joined.input_tokens
    # Chunk numbers continue after the earlier plans', so the chunk items 0 .. chunks - 1 are every plan's.
    first = previous.chunks if previous else 0
    number = previous.number + 1 if previous else 0
    chunks = plan_chunks([(output.key, output.size) for output in outputs], chunk_bytes)
    version_base = int(clock()) << LINE_BITS
    items = [
        {"chunk": first + offset, "bucket": output_bucket, "file": 0, "version_base": version_base, **chunk}
        for offset, chunk in enumerate(chunks)
    ]
    key = plan_key(state.job_id, plan_name(number))
    # The Distributed Map reads this array itself, so the plan never passes through the state payload.
    s3.put_object(Bucket=output_bucket, Key=key, Body=json.dumps(items).encode())
    total = first + len(items)
    objects = (previous.objects if previous else 0) + len(outputs)
    jobs.update(state.job_id, JobStateName.INGESTING, output_objects=objects, chunks=total)
    plan = IngestPlan(
        bucket=output_bucket,
        key=key,
        chunks=total,
        objects=objects,
        first=first,
        number=number,
        tolerated_failure_percentage=config.sink.tolerated_chunk_failure_percentage,
        dead_lettered=(previous.dead_lettered if previous else 0) + missing,  # every plan's
        passages_embedded=(previous.passages_embedded if previous else 0)
        + (joiner.embedded if joiner else 0),
        input_tokens=input_tokens,
    )
    remotes = [
        remote.model_copy(update={"ingested": True}) if remote in ready else remote
        for remote in state.remotes
    ]
    status = state.status.model_copy(update={"ready": 0}) if state.status else None
    return state.model_copy(update={"plan": plan, "remotes": remotes, "status": status})


def plan_batch_ingest(
    state: JobState,
    *,
    pipeline: DeployedPipeline,
    store: JobStore,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    clock: Callable[[], float] = time.time,
) -> JobState:
    """A `_batch_ingestion` request run by the stack (batch_ingestion/job.py): its files are the output."""
    config, opensearch = pipeline.config, pipeline.opensearch
    jobs, s3, output_bucket = store.table, store.s3, store.output_bucket
    # First, so a refused request is still a job in the table, with its pipeline and failure.
    jobs.create(state.job_id, state.pipeline, state.source)  # False on a re-run: the item is there
    staged = load_staged(s3, output_bucket, state.job_id)
    request = staged.parsed()
    if request.index_name != config.sink.index:
        raise BatchTargetError(
            f"index_name '{request.index_name}' is not pipeline '{config.name}''s index "
            f"'{config.sink.index}': the stack's functions may write only to its pipelines' indices"
        )
    ensure_compatible_index(opensearch, config.sink.index, config.sink.mapping)
    version_base = int(clock()) << LINE_BITS
    items: list[dict[str, Any]] = []
    for number, file in enumerate(staged.files):
        for chunk in plan_chunks([(file.key, file.size)], chunk_bytes):
            items.append(
                {"chunk": len(items), "bucket": file.bucket, "file": number, "version_base": version_base}
                | chunk
            )
    key = plan_key(state.job_id, plan_name(0))  # one plan: a request has no remote jobs to wait for
    s3.put_object(Bucket=output_bucket, Key=key, Body=json.dumps(items).encode())
    jobs.update(state.job_id, JobStateName.INGESTING, output_objects=len(staged.files), chunks=len(items))
    plan = IngestPlan(
        bucket=output_bucket,
        key=key,
        chunks=len(items),
        objects=len(staged.files),
        tolerated_failure_percentage=config.sink.tolerated_chunk_failure_percentage,
    )
    # No inference: the files are the finished output, so after its Map the workflow's PartFinished?
    # (nothing more ready, all done) goes straight to Finalize.
    status = JobStatus(state=JobStateName.COMPLETED, ready=0)
    return state.model_copy(update={"plan": plan, "status": status})
