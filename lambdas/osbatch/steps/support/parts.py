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
Where each part and group ends is planning/layout.py's arithmetic, which `osbatch plan` runs without
writing anything.
"""

from __future__ import annotations

import bisect
import tempfile
from array import array
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from pydantic import TypeAdapter

from osbatch import jsonlines
from osbatch.backends.base import InputLimits, JobLimits
from osbatch.contracts import job_group
from osbatch.ingest.readers import object_lines
from osbatch.models import Model
from osbatch.planning.layout import Group, Part, PartLayout, SplitSizes, oversized_line
from osbatch.planning.layout import TooManyRemoteJobs as TooManyRemoteJobs  # Prepare's callers catch it here

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SPOOL_BYTES = 64 * 1024 * 1024  # parts above this spill to /tmp instead of Lambda memory


def part_name(part: int) -> str:
    return f"part-{part:05d}.jsonl"


class PreparedPart(Model):
    """One input part as the parts list records it."""

    name: str  # part_name(number): its output object is `<name>.out`
    job: int  # the remote job (PreparedJob.index) it was sent to
    key: str  # in the output bucket
    records: int  # the user's records in it (a chunked record's passages are one record)


PARTS_LIST = TypeAdapter(list[PreparedPart])


def write_parts_list(s3: S3Client, bucket: str, key: str, parts: list[PreparedPart]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=PARTS_LIST.dump_json(parts))


def read_parts_list(s3: S3Client, bucket: str, key: str) -> list[PreparedPart]:
    return PARTS_LIST.validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


class LineTooBig(ValueError):
    """A record's input line is over the backend's per-line limit (InputLimits.max_bytes_per_line); nothing
    of it was written. The message is the dead letter's reason."""


class PartWriter:
    """Writes JSONL parts to `s3://bucket/<prefix>job-NNNNN/part-MMMMM.jsonl`, grouped by `job_limits`
    (planning/layout.py decides where each part and remote job ends).

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
        self._layout = PartLayout(limits, job_limits, max_jobs)
        self._max_line_bytes = limits.max_bytes_per_line
        self._source_prefix = source_prefix
        self._file: IO[bytes] | None = None
        self._source: IO[bytes] | None = None
        # Per part, where each record ends: (inputs, lines) so far. A split cuts at a record's end, so a
        # chunked record's lines stay together. Only a backend with a minimum per job has splits, and only
        # the last two groups are rebalanced, so only they are kept (8 bytes a record each).
        self._ends: dict[int, tuple[array[int], array[int]]] = {}
        self._minimum = job_limits.min_records_per_job
        self._splits = self._minimum > 1

    @property
    def groups(self) -> list[Group]:
        return self._layout.groups

    @property
    def parts(self) -> int:
        return self._layout.parts

    def input_key(self, group: Group, number: int) -> str:
        return f"{self._prefix}{job_group(group.index)}{part_name(number)}"

    def source_key(self, number: int) -> str:
        return f"{self._source_prefix}{part_name(number)}"

    def write(self, line: dict[str, Any], source: dict[str, Any] | None = None) -> None:
        """One record sent as one input line."""
        self.write_record([(line, 1)], source)

    def write_record(
        self, lines: Sequence[tuple[dict[str, Any], int]], source: dict[str, Any] | None = None
    ) -> None:
        """One record's input lines, each with the inputs it carries (a chunked record's passages), all in
        one part: a record is joined from one output object."""
        data = [jsonlines.dump_line(line) for line, _ in lines]
        too_big = oversized_line(list(map(len, data)), self._max_line_bytes)
        if too_big is not None:
            raise LineTooBig(too_big)
        size, inputs = sum(map(len, data)), sum(count for _, count in lines)
        if self._layout.must_close(size, inputs):
            self._upload()
        if self._file is None:
            groups = len(self.groups)
            self._layout.open(size, inputs)
            if len(self.groups) > groups:
                self._forget_ends(before_group=len(self.groups) - 2)
            # Held open across writes and closed by _upload, so a context manager does not fit.
            self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
            if self._source_prefix is not None:
                self._source = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        for chunk in data:
            self._file.write(chunk)
        if self._source is not None and source is not None:
            self._source.write(jsonlines.dump_line(source))
        self._layout.add(size, inputs)
        if self._splits:
            ends = self._ends.setdefault(self.parts, (array("q"), array("q")))
            ends[0].append(self._layout.records)
            ends[1].append((ends[1][-1] if ends[1] else 0) + len(lines))

    def close(self) -> None:
        if self._file is not None:
            self._upload()
        self._layout.rebalance(self._move, self._split)

    def parts_list(self) -> list[PreparedPart]:
        """Every part as closed (after rebalancing moved or split any), in remote job order."""
        return [
            PreparedPart(
                name=part_name(part.number),
                job=group.index,
                key=self.input_key(group, part.number),
                records=part.sources,
            )
            for group in self.groups
            for part in group.parts
        ]

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
        self._file = None
        self._layout.close()

    def _move(self, part: Part, source: Group, target: Group) -> None:
        old, new = self.input_key(source, part.number), self.input_key(target, part.number)
        self._s3.copy_object(Bucket=self._bucket, Key=new, CopySource={"Bucket": self._bucket, "Key": old})
        self._s3.delete_object(Bucket=self._bucket, Key=old)

    def _split(self, part: Part, source: Group, target: Group, keep: int, number: int) -> SplitSizes:
        """The records of `part` past its first `keep` inputs (to the end of the record under way) become
        part `number` of `target`."""
        inputs, lines = self._ends.get(part.number, (array("q"), array("q")))
        if inputs:
            # Cut at a record's end: before `keep` (moving a little more) while the source job keeps its
            # minimum, else after it (moving a little less).
            record = bisect.bisect_right(inputs, keep) - 1
            if record < 0 or source.records - part.records + inputs[record] < self._minimum:
                record = bisect.bisect_left(inputs, keep)
            kept_inputs, kept_lines, kept_records = inputs[record], lines[record], record + 1
        else:
            kept_inputs = kept_lines = kept_records = keep
        if kept_inputs >= part.records:
            return SplitSizes(part.records, part.sources, part.bytes, 0)  # one record: nothing to split
        kept, moved = self._cut(
            self.input_key(source, part.number), kept_lines, self.input_key(target, number)
        )
        if self._source_prefix is not None:
            self._cut(self.source_key(part.number), kept_records, self.source_key(number))
        if inputs:
            self._ends[number] = (
                array("q", (end - kept_inputs for end in inputs[kept_records:])),
                array("q", (end - kept_lines for end in lines[kept_records:])),
            )
            self._ends[part.number] = (inputs[:kept_records], lines[:kept_records])
        return SplitSizes(kept_inputs, kept_records, kept, moved)

    def _forget_ends(self, before_group: int) -> None:
        for group in self.groups[: max(before_group, 0)]:
            for part in group.parts:
                self._ends.pop(part.number, None)

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
