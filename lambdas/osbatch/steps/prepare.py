"""Prepare: check the index, validate the uploaded records and write the backend's input files.

The index is created (or its mapping checked) first, so an unreachable cluster or a bad mapping fails the
job before any inference is paid for. Bad lines never reach the model (one malformed line would fail a whole
SageMaker job): they go to the dead-letter store with the reason, and the counts say how many. Valid records
are cut into parts that fit the backend's limits, grouped into remote jobs (steps/support/parts.py). The input
is streamed; nothing holds the whole file in memory (the ids seen so far take 16 bytes each, see
steps/support/seen_ids.py). Records whose embedded input did not change since osbatch indexed them skip the
model (osbatch.incremental): `valid` counts the records sent to it, `unchanged` those kept."""

from __future__ import annotations

import json
from typing import Any, Protocol

from osbatch.backends.base import InputLimits
from osbatch.contracts import (
    job_group,
    job_input_prefix,
    job_parts_key,
    job_source_prefix,
    job_stale_ids_key,
)
from osbatch.dal import JobStore
from osbatch.incremental.check import FingerprintCheck, counts_when_off, stamp
from osbatch.incremental.sync import write_stale
from osbatch.ingest.dead_letter import Stage
from osbatch.ingest.readers import object_lines
from osbatch.ingest.records import RecordError, original, parse_record, require_id, require_text
from osbatch.models import JobState, JobStateName, Prepared, PreparedJob
from osbatch.planning.estimate import TokenTally, job_estimate
from osbatch.record_paths import BOOKKEEPING_KEY, RecordPath
from osbatch.s3uri import s3_uri
from osbatch.search.index import ensure_compatible_index
from osbatch.steps.support.parts import LineTooBig, PartWriter, write_parts_list
from osbatch.steps.support.passages import PassageWriter, keeps_source
from osbatch.steps.support.ports import DeployedPipeline
from osbatch.steps.support.seen_ids import SeenIds


class DeadLetters(Protocol):
    def add(
        self, *, stage: Stage, reason: str, record: Any, line: int | None = None, offset: int | None = None
    ) -> None: ...

    def close(self) -> int: ...


def prepare_job(
    state: JobState, *, pipeline: DeployedPipeline, store: JobStore, dead_letters: DeadLetters
) -> JobState:
    config, backend, opensearch = pipeline.config, pipeline.backend, pipeline.opensearch
    jobs, s3, output_bucket = store.table, store.s3, store.output_bucket
    ensure_compatible_index(opensearch, config.sink.index, config.sink.mapping)
    id_path = RecordPath(config.source.id_path)
    text_path = RecordPath(config.source.text_path)
    prefix = job_input_prefix(state.job_id)
    limits = InputLimits(
        min(backend.limits.max_records_per_file, config.inference.max_records_per_part),
        backend.limits.max_bytes_per_file,
        backend.limits.max_bytes_per_line,
    )
    source_prefix = job_source_prefix(state.job_id) if keeps_source(config, backend) else None
    parts = PartWriter(
        s3,
        output_bucket,
        prefix,
        limits,
        backend.job_limits,
        source_prefix,
        max_jobs=config.inference.max_remote_jobs,
    )
    records_in = valid = sent = blank = duplicates = 0
    seen, sent_tokens = SeenIds(), TokenTally()
    chunked = PassageWriter(pipeline.chunker, backend, config, limits) if pipeline.chunker else None

    def send(record: dict[str, Any], number: int, text: str, fields: dict[str, str] | None = None) -> None:
        nonlocal sent
        if chunked is not None:
            # A record the chunker refuses is dead-lettered (stage `chunk`) and not sent.
            if chunked.write(parts, record, number, text, dead_letters, fields):
                sent += 1
                sent_tokens.add(text)
            return
        # The line number travels with the record (SageMaker) or in the record id (joined backends), so
        # ingest and dead letters can name the line of the user's file.
        source = {**record, BOOKKEEPING_KEY: {"line": number}} if backend.joins_source else None
        line = backend.input_line(record, number, text)
        if fields:  # the fingerprint and origin ingest writes into the document (osbatch.incremental)
            line, source = stamp(line, fields), source and stamp(source, fields)
        try:
            parts.write(line, source)
        except LineTooBig as refusal:  # dead-letter the one record, not the remote job it would fail
            dead_letters.add(line=number, stage="parse", reason=str(refusal), record=record)
            return
        sent += 1
        sent_tokens.add(text)

    def unchanged_failed(number: int, record: dict[str, Any], reason: str) -> None:
        dead_letters.add(line=number, stage="index", reason=reason, record=record)

    # None where the pipeline turns incremental re-embedding off (source.incremental): every record is sent.
    check = (
        FingerprintCheck(
            opensearch,
            config,
            result_key=backend.result_key,
            job_id=state.job_id,
            source_uri=state.source.uri,
            send=send,
            dead_letter=unchanged_failed,
            inputs=chunked.inputs if chunked else lambda _text: 1,
        )
        if config.source.incremental
        else None
    )

    lines = object_lines(s3, state.source.bucket, state.source.key)
    for number, (_, raw) in enumerate(lines, start=1):
        if not raw.strip():
            blank += 1  # a blank line is not a record (trailing newlines, spacing)
            continue
        records_in += 1
        try:
            record = parse_record(raw, at_object_start=number == 1)
            doc_id = require_id(record, id_path, config.source.id_path)
            text = require_text(record, text_path, config.source.text_path)
        except RecordError as error:
            dead_letters.add(line=number, stage="parse", reason=str(error), record=original(raw, error))
            continue
        valid += 1
        duplicates += not seen.add(doc_id)
        if check is None:
            send(record, number, text)
        else:
            check.offer(doc_id, record, number, text)
    incremental = check.close() if check is not None else counts_when_off()
    if check is not None:  # the earlier version's documents this one lacks (osbatch.incremental.sync)
        incremental.stale = write_stale(
            opensearch,
            config.sink.index,
            source_uri=state.source.uri,
            current=seen.__contains__,
            s3=s3,
            bucket=output_bucket,
            key=job_stale_ids_key(state.job_id),
        )
    parts.close()
    write_parts_list(s3, output_bucket, job_parts_key(state.job_id), parts.parts_list())
    dead_lettered = dead_letters.close()

    jobs_prepared = [
        PreparedJob(
            index=group.index,
            input_uri=s3_uri(output_bucket, f"{prefix}{job_group(group.index)}"),
            parts=len(group.parts),
            records=group.sources,
            bytes=group.bytes,
        )
        for group in parts.groups
    ]
    estimate = job_estimate(
        config, source=state.source.uri, sent=sent, tokens=sent_tokens.tokens, jobs=jobs_prepared
    )
    prepared = Prepared(
        input_uri=s3_uri(output_bucket, prefix),
        parts=parts.parts,
        records_in=records_in,
        valid=sent,
        unchanged=incremental.unchanged,
        incremental=incremental.as_report(),
        dead_lettered=dead_lettered,
        blank_lines=blank,
        duplicate_ids=duplicates,
        jobs=jobs_prepared,
        estimate=estimate,
        passages=chunked.sent if chunked else None,
    )
    jobs.update(
        state.job_id,
        JobStateName.CREATED,
        records_in=records_in,
        valid=valid,
        unchanged=incremental.unchanged,
        dead_lettered=dead_lettered,
        duplicate_ids=duplicates,
        passages_sent=chunked.sent if chunked else None,
        estimate=json.dumps(estimate),  # JSON text: osbatch status shows it beside the actuals
    )
    return state.model_copy(update={"prepared": prepared})
