"""Values the ingest path passes around.

IngestChunk and ChunkResult cross the Step Functions boundary, so they are pydantic models that validate.
The per-record types are plain slotted dataclasses: they are built once per line on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from osbatch.models import SourceObject


class IngestChunk(BaseModel):
    """One Distributed Map item: the lines that start in [start, end) of one output object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str = Field(min_length=1)
    pipeline: str = Field(min_length=1)
    source: SourceObject  # the user's upload, which dead letters cite
    chunk: int = Field(ge=0)
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    start: int = Field(ge=0)
    end: int
    # A document's version is version_base + its input line: a later line, or plan, wins (ingest/bulk.py).
    version_base: int | None = Field(None, ge=0)
    # Which data_source file of a `_batch_ingestion` request the chunk reads (its field_map part); 0 for jobs.
    file: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _non_empty_range(self) -> IngestChunk:
        if self.end <= self.start:
            raise ValueError(f"chunk {self.chunk}: end ({self.end}) must be after start ({self.start})")
        return self


class ChunkResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk: int = Field(ge=0)
    lines: int = Field(ge=0)
    indexed: int = Field(ge=0)
    dead_lettered: int = Field(ge=0)
    throttled: int = Field(0, ge=0, description="bulk attempts answered 429: what the domain limit adapts to")

    @model_validator(mode="after")
    def _conserved(self) -> ChunkResult:
        # Conservation is the product's promise; a result that breaks it must fail loudly, not be recorded.
        if self.lines != self.indexed + self.dead_lettered:
            raise ValueError(
                f"chunk {self.chunk}: {self.lines} lines != {self.indexed} indexed + "
                f"{self.dead_lettered} dead-lettered"
            )
        return self


@dataclass(frozen=True, slots=True)
class MappedDoc:
    doc_id: str | None
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a record came from, kept until it is indexed so a failure can be dead-lettered with its original.

    The raw line is kept, not the parsed record: it is smaller than the Python objects, and failures are rare.
    """

    offset: int
    line: int | None
    raw: bytes


@dataclass(frozen=True, slots=True)
class Failure:
    ref: RecordRef
    reason: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A chunk's settled prefix: lines before `offset` are counted and indexed or in stored dead letters,
    the first `segment` dead-letter segments. A retried attempt resumes from here."""

    offset: int
    lines: int = 0
    indexed: int = 0
    dead_lettered: int = 0
    segment: int = 0
