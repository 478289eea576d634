"""A `_batch_ingestion` request run by the deployed stack: the job workflow without its inference.

`osbatch batch-ingest request.json --stack` stages the request as a StagedBatch in the output bucket
(contracts.batch_request_key) and starts an execution whose JobState has `batch` and, as `source`, that
object. The workflow's BatchIngest? Choice sends it straight to PlanIngest (steps/plan_ingest.py), which
cuts the request's files into the same chunk plan a job's output gets; the same Distributed Map ingests
it with the same ingest-chunk function (each chunk maps with its file's part of the field_map) and
Finalize reports it.

The request runs under a deployed pipeline: its index must be that pipeline's `sink.index`, because the
functions may write only to the pipelines' indices (infra/search.py), and it uses that pipeline's domain,
bulk settings and domain-wide writer limit. Its files are read where they are: S3 sources in the buckets the
stack was granted (context `batch_ingest_buckets`), local and OpenAI files staged by the CLI under
contracts.batch_files_prefix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from osbatch.batch_ingestion.request import BatchIngestRequest, parse_batch_request
from osbatch.config import PipelineConfig
from osbatch.contracts import batch_request_key
from osbatch.ingest.chunk import IngestTarget

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
