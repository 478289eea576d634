"""A `_batch_ingestion` request run by the deployed stack: the job workflow without its inference.

`osbatch batch-ingest request.json --stack` stages the request as a StagedBatch in the output bucket
(contracts.batch_request_key) and starts an execution whose JobState has `batch` and, as `source`, that
object. The workflow's BatchIngest? Choice sends it straight to PlanIngest, which cuts the request's files
into the same chunk plan a job's output gets; the same Distributed Map ingests it with the same
ingest-chunk function (each chunk maps with its file's part of the field_map) and Finalize reports it.

The request runs under a deployed pipeline: its index must be that pipeline's `sink.index`, because the
functions may write only to the pipelines' indices (infra/search.py), and it uses that pipeline's domain,
bulk settings and domain-wide writer limit. Its files are read where they are: S3 sources in the buckets the
stack was granted (context `batch_ingest_buckets`), local and OpenAI files staged by the CLI under
contracts.batch_files_prefix.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from osbatch.config import PipelineConfig
from osbatch.contracts import batch_request_key, plan_key, plan_name
from osbatch.ingest.batch_request import BatchIngestRequest, parse_batch_request
from osbatch.ingest.chunk import IngestTarget
from osbatch.ingest.readers import plan_chunks
from osbatch.jobs import JobTable
from osbatch.models import IngestPlan, JobState, JobStateName, JobStatus
from osbatch.search.index import ensure_compatible_index
from osbatch.steps.finish import LINE_BITS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

BATCH_ID_INFIX = "-batch-"


class BatchTargetError(ValueError):
    """The request cannot run under this pipeline; the message says what would."""


class StagedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    size: int = Field(ge=0)
    cited: str  # what the request named (an S3 URI, a path, an OpenAI file id): dead letters cite it
    version: str  # an S3 ETag, or the sha256 of a staged file: part of the job id


class StagedBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request: dict[str, Any]  # the body as the user wrote it
    files: list[StagedFile]

    def parsed(self) -> BatchIngestRequest:
        return parse_batch_request(self.request)


def batch_job_id(pipeline: str, request: dict[str, Any], files: Sequence[tuple[str, int, str]]) -> str:
    """files: (cited, size, version) of each data_source file. The same body over the same file versions
    is the same job (and execution name), so a re-run starts nothing new."""
    identity = {"request": request, "files": [list(file) for file in files]}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{pipeline}{BATCH_ID_INFIX}{digest}"


def load_staged(s3: Any, bucket: str, job_id: str) -> StagedBatch:
    body = s3.get_object(Bucket=bucket, Key=batch_request_key(job_id))["Body"].read()
    return StagedBatch.model_validate_json(body)


def is_batch_chunk(source_bucket: str, source_key: str, job_id: str, output_bucket: str) -> bool:
    """A batch job's source is its staged request (a pipeline job's is the user's upload)."""
    return source_bucket == output_bucket and source_key == batch_request_key(job_id)


def batch_target(staged: StagedBatch, file: int, config: PipelineConfig) -> IngestTarget:
    request = staged.parsed()
    return IngestTarget(request.mapper(file), request.index_name, config.sink.bulk, upsert=request.joins)


def plan_batch_ingest(
    state: JobState,
    *,
    config: PipelineConfig,
    s3: S3Client,
    opensearch: OpenSearch,
    jobs: JobTable,
    output_bucket: str,
    chunk_bytes: int,
    clock: Callable[[], float] = time.time,
) -> JobState:
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
