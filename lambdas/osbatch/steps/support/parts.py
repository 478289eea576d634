"""Prepare's output: valid records cut into part files, and the parts grouped into remote jobs.

Parts fit the backend's InputLimits (per file), groups its JobLimits (per remote job). Each group's parts
sit in a folder of their own (`input/job-NNNNN/part-MMMMM.jsonl`, contracts.job_group): the input of one
remote job. Part numbers run over the whole upload, so a part's name is unique in the job, and its source
records (joined backends) stay at `source/part-MMMMM.jsonl` whichever group holds it. Groups fill in order
and a part is cut early when its group is full, so no part straddles two remote jobs.

Prepare also writes the list of parts (contracts.job_parts_key: each part's remote job, key and records),
so Finalize can tell which part's output came up short without reading any output (steps/support/dropped.py).

Minimum records per job (Bedrock refuses a job below it): only the last group can fall under it, since every
earlier one was closed full. The previous group's tail records then move into it: whole parts by copy, and
at most one part split in two, read back from S3 (a part is bounded by the per-file limits). Both groups stay
at or above the minimum as long as max_records_per_job >= 2 * min_records_per_job, which config validation
holds Bedrock's quotas to; a group closed full by bytes with fewer records than that gives what it can.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from pydantic import TypeAdapter

from osbatch import jsonlines
from osbatch.backends.base import InputLimits, JobLimits
from osbatch.contracts import job_group
from osbatch.ingest.readers import object_lines
from osbatch.models import Model

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SPOOL_BYTES = 64 * 1024 * 1024  # parts above this spill to /tmp instead of Lambda memory


class TooManyRemoteJobs(ValueError):
    """The upload needs more remote jobs than inference.max_remote_jobs allows."""


def part_name(part: int) -> str:
    return f"part-{part:05d}.jsonl"


@dataclass
class Part:
    number: int
    records: int
    bytes: int


@dataclass
class Group:
    """The parts of one remote job."""

    index: int
    parts: list[Part] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(part.records for part in self.parts)

    @property
    def bytes(self) -> int:
        return sum(part.bytes for part in self.parts)


class PreparedPart(Model):
    """One input part as the parts list records it."""

    name: str  # part_name(number): its output object is `<name>.out`
    job: int  # the remote job (PreparedJob.index) it was sent to
    key: str  # in the output bucket
    records: int


PARTS_LIST = TypeAdapter(list[PreparedPart])


def write_parts_list(s3: S3Client, bucket: str, key: str, parts: list[PreparedPart]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=PARTS_LIST.dump_json(parts))


def read_parts_list(s3: S3Client, bucket: str, key: str) -> list[PreparedPart]:
    return PARTS_LIST.validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


class PartWriter:
    """Writes JSONL parts to `s3://bucket/<prefix>job-NNNNN/part-MMMMM.jsonl`, grouped by `job_limits`.

    With a source_prefix, each part's source records go to `<source_prefix>part-MMMMM.jsonl`, cut the same
    way (the backend's input lines decide the cut), so a part's output joins onto one source object.
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        prefix: str,
        limits: InputLimits,
        job_limits: JobLimits,
        source_prefix: str | None = None,
        max_jobs: int | None = None,
    ) -> None:
        self._s3, self._bucket, self._prefix = s3, bucket, prefix
        self._limits, self._job_limits, self._max_jobs = limits, job_limits, max_jobs
        self._source_prefix = source_prefix
        self.groups: list[Group] = []
        self.parts = 0
        self._file: IO[bytes] | None = None
        self._source: IO[bytes] | None = None
        self._records = 0
        self._bytes = 0

    def input_key(self, group: Group, number: int) -> str:
        return f"{self._prefix}{job_group(group.index)}{part_name(number)}"

    def source_key(self, number: int) -> str:
        return f"{self._source_prefix}{part_name(number)}"

    def write(self, line: dict[str, Any], source: dict[str, Any] | None = None) -> None:
        data = jsonlines.dump_line(line)
        if self._file is not None and (self._file_full(len(data)) or self._group_full(len(data))):
            self._upload()
        if self._file is None:
            if not self.groups or self._group_full(len(data)) or self._group_at_part_limit():
                self._new_group()
            # Held open across writes and closed by _upload, so a context manager does not fit.
            self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
            if self._source_prefix is not None:
                self._source = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._file.write(data)
        if self._source is not None and source is not None:
            self._source.write(jsonlines.dump_line(source))
        self._records += 1
        self._bytes += len(data)

    def close(self) -> None:
        if self._file is not None:
            self._upload()
        self._rebalance()

    def parts_list(self) -> list[PreparedPart]:
        """Every part as closed (after rebalancing moved or split any), in remote job order."""
        return [
            PreparedPart(
                name=part_name(part.number),
                job=group.index,
                key=self.input_key(group, part.number),
                records=part.records,
            )
            for group in self.groups
            for part in group.parts
        ]

    def _file_full(self, incoming: int) -> bool:
        return (
            self._records >= self._limits.max_records_per_file
            or self._bytes + incoming > self._limits.max_bytes_per_file
        )

    def _group_full(self, incoming: int) -> bool:
        group = self.groups[-1]
        records = group.records + self._records
        if not records:
            return False  # a record is never alone in a group of its own making
        limits = self._job_limits
        return (
            records + 1 > limits.max_records_per_job
            or group.bytes + self._bytes + incoming > limits.max_bytes_per_job
        )

    def _group_at_part_limit(self) -> bool:
        most = self._job_limits.max_parts_per_job
        return most is not None and len(self.groups[-1].parts) >= most

    def _new_group(self) -> None:
        if self._max_jobs is not None and len(self.groups) >= self._max_jobs:
            raise TooManyRemoteJobs(
                f"the upload needs more than {self._max_jobs} remote jobs within the backend's per-job "
                "limits (inference.max_remote_jobs); split the file or raise the limit"
            )
        self.groups.append(Group(len(self.groups)))

    def _upload(self) -> None:
        assert self._file is not None
        group, number = self.groups[-1], self.parts
        if self._source is not None:
            self._source.seek(0)
            self._s3.upload_fileobj(self._source, self._bucket, self.source_key(number))
            self._source.close()
            self._source = None
        self._file.seek(0)
        self._s3.upload_fileobj(self._file, self._bucket, self.input_key(group, number))  # multipart
        self._file.close()
        group.parts.append(Part(number, self._records, self._bytes))
        self._file, self._records, self._bytes = None, 0, 0
        self.parts += 1

    def _rebalance(self) -> None:
        if len(self.groups) < 2:
            return
        previous, last = self.groups[-2], self.groups[-1]
        minimum = self._job_limits.min_records_per_job
        while last.records < minimum and previous.parts:
            moving = min(minimum - last.records, previous.records - minimum)
            if moving <= 0:
                return  # the previous group is at the minimum itself: nothing to spare
            part = previous.parts[-1]
            if moving >= part.records:
                self._move(part, previous, last)
            else:
                self._split(part, previous, last, moving)

    def _move(self, part: Part, source: Group, target: Group) -> None:
        old, new = self.input_key(source, part.number), self.input_key(target, part.number)
        self._s3.copy_object(Bucket=self._bucket, Key=new, CopySource={"Bucket": self._bucket, "Key": old})
        self._s3.delete_object(Bucket=self._bucket, Key=old)
        source.parts.remove(part)
        target.parts.insert(0, part)

    def _split(self, part: Part, source: Group, target: Group, moving: int) -> None:
        """The last `moving` records of `part` become a new part of `target`; the rest stay."""
        keep = part.records - moving
        number = self.parts
        self.parts += 1
        kept, moved = self._cut(self.input_key(source, part.number), keep, self.input_key(target, number))
        if self._source_prefix is not None:
            self._cut(self.source_key(part.number), keep, self.source_key(number))
        part.records, part.bytes = keep, kept
        target.parts.insert(0, Part(number, moving, moved))

    def _cut(self, key: str, keep: int, tail_key: str) -> tuple[int, int]:
        """Rewrite `key` with its first `keep` lines and put the others at `tail_key`; their sizes."""
        lines = object_lines(self._s3, self._bucket, key)
        sizes = [0, 0]
        with (
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as head,
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as tail,
        ):
            for number, (_, raw) in enumerate(lines):
                side = 0 if number < keep else 1
                (head, tail)[side].write(raw + b"\n")
                sizes[side] += len(raw) + 1
            for spool, target in ((head, key), (tail, tail_key)):
                spool.seek(0)
                self._s3.upload_fileobj(spool, self._bucket, target)
        return sizes[0], sizes[1]
