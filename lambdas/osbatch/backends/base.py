"""The one small interface every inference service implements (like Data Prepper's BatchJobCreator).

Adding a backend touches one module and the `Backend` enum in config.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from osbatch.models import JobStateName, RemoteJob


class BackendThrottled(Exception):
    """The service refused for now (throttling, quota). The workflow retries it with backoff for the
    pipeline's retry_time_window; the class name is matched by the Retry rule."""


class JobSlotsFull(Exception):
    """The pipeline has max_jobs_in_flight jobs running (StartJob's slot queue). Not a service refusing
    work but osbatch's own FIFO queue: retried by a rule of its own for the pipeline's slot_wait_window,
    so waiting for a slot never uses up retry_time_window."""


# The workflow's StartJob Retry rules (infra/workflow.py). Lambda reports an exception's own class name as
# the error, so every subclass that is retried must be named, not only the base class.
THROTTLED_ERRORS = (BackendThrottled.__name__,)
SLOT_WAIT_ERRORS = (JobSlotsFull.__name__,)


# A progress flag on a FAILED status: the service kept refusing the work past retry_time_window after the
# job was created (OpenAI's token_limit_exceeded batches). FailJob then treats it as it treats StartJob's
# spent throttling retries: no record reached a model, so the file is dead-lettered whole.
THROTTLED_PAST_WINDOW = "throttled_past_retry_window"


class BackendUnavailable(Exception):
    """A status call failed. Counted by the poller; too many in a row make the job UNREACHABLE."""


@dataclass(frozen=True)
class BackendStatus:
    state: JobStateName
    reason: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputObject:
    bucket: str
    key: str
    size: int


@dataclass(frozen=True)
class InputLimits:
    """How prepared input is cut into files for this service."""

    max_records_per_file: int
    max_bytes_per_file: int
    # The most one input line may take, where one larger line fails the whole remote job rather than only
    # itself (SageMaker's MaxPayloadInMB); Prepare dead-letters such a record instead. None: no such limit.
    max_bytes_per_line: int | None = None


@dataclass(frozen=True)
class JobLimits:
    """How many of the prepared parts one remote job may take, by the service's per-job quotas.

    Prepare groups parts into remote jobs within these; min_records_per_job is a floor the last job is
    rebalanced to reach (Bedrock refuses a job below it). max_parts_per_job: None for no limit on files.
    """

    max_records_per_job: int
    max_bytes_per_job: int
    min_records_per_job: int = 1
    max_parts_per_job: int | None = None


@dataclass(frozen=True)
class OutputLine:
    """One line of a service's output that does not carry the source record (Bedrock, OpenAI).

    `line` is the record's line in the user's file, decoded from the recordId / custom_id; `result` is the
    model output as it is stored under RESULT_KEY of the joined record; `error` is {code, message}.
    `passage`: for a chunked record, the number of the first passage the line answers (one, or several for
    an OpenAI request whose input is a list); None for a whole record.
    """

    line: int | None
    result: Any = None
    error: dict[str, Any] | None = None
    input_tokens: int | None = None  # the input tokens the service billed for it, where the line says
    passage: int | None = None


@dataclass(frozen=True)
class PassageInput:
    """One passage of a record as Prepare sends it: its number in the record, its text and offsets."""

    number: int
    text: str
    start: int
    end: int


# text -> the smallest record holding it at source.text_path (where a SageMaker InputFilter finds it).
TextHolder = Callable[[str], dict[str, Any]]


class NotAnEmbedding(ValueError):
    """A passage's model output holds no vector (a text-generation model): chunking needs an embedding."""


class BatchBackend(Protocol):
    limits: InputLimits
    job_limits: JobLimits
    # True when output lines lack the source record: Prepare then keeps the records next to the input and
    # PlanIngest joins each output line back onto its record (steps/support/join.py) before ingest reads it.
    joins_source: bool
    result_key: str  # where the model output sits in the (joined) output record

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        """The service's input line for one valid source record."""
        ...

    def submit(self, name: str, input_uri: str, output_uri: str) -> RemoteJob:
        """Start one remote job named `name` (contracts.remote_job_name) on the parts under input_uri.
        Idempotent: submitting the same name again returns the same job."""
        ...

    def status(self, remote: RemoteJob) -> BackendStatus: ...

    def cancel(self, remote: RemoteJob) -> None: ...

    def outputs(self, remote: RemoteJob) -> list[OutputObject]: ...

    def parse_output(self, line: dict[str, Any]) -> OutputLine:
        """What one output line says about which record (and passage), and its result."""
        ...

    def passage_lines(
        self, line: int, passages: Sequence[PassageInput], holder: TextHolder
    ) -> list[tuple[dict[str, Any], int]]:
        """The service's input lines for one record's passages (all of them, in order), in its natural shape,
        each with how many passages it carries (what the per-job input quotas count)."""
        ...

    def embeddings(self, result: Any) -> list[Any]:
        """The vectors in one output line's result, in the order of the passages it answers; raises
        NotAnEmbedding when it holds none."""
        ...
