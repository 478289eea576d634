"""How valid records are cut into parts and parts grouped into remote jobs: the arithmetic alone, no I/O.

Prepare's PartWriter (steps/support/parts.py) writes the files this layout decides on; `osbatch plan`
(planning/plan.py) runs the same layout over sizes only, so the plan's remote jobs are the ones Prepare
would create. Parts fit the backend's InputLimits (per file), groups its JobLimits (per remote job). Groups
fill in order and a part is cut early when its group is full, so no part straddles two remote jobs.

Minimum records per job (Bedrock refuses a job below it): only the last group can fall under it, since every
earlier one was closed full. The previous group's tail records then move into it: whole parts, and at most
one part split in two (`rebalance`, whose callbacks do the writer's I/O).

Records and inputs: the quotas count what is sent (`records`: input lines, or for a chunked record the
passages its lines carry), while the accounting counts the user's records (`sources`). A chunked record's
lines are added as one unit, so they never straddle two parts, and a split keeps whole records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from osbatch.backends.base import InputLimits, JobLimits


class TooManyRemoteJobs(ValueError):
    """The upload needs more remote jobs than inference.max_remote_jobs allows."""


@dataclass
class Part:
    number: int
    records: int  # inputs the service counts: lines, or passages for a chunked record
    bytes: int
    sources: int = -1  # the user's records in it; -1: as many as records (one input line per record)

    def __post_init__(self) -> None:
        if self.sources < 0:
            self.sources = self.records


@dataclass(frozen=True)
class SplitSizes:
    """Where a split part was actually cut (at a record's end): what stays, and the bytes of each side."""

    kept_records: int
    kept_sources: int
    kept_bytes: int
    moved_bytes: int


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

    @property
    def sources(self) -> int:
        return sum(part.sources for part in self.parts)


# (part, from group, to group): the whole part moves.
MovePart = Callable[[Part, Group, Group], None]
# (part, from group, to group, records to keep, new part number) -> where it was cut. The cut may keep
# more than asked, to the end of the record under way (a chunked record's passages stay together).
SplitPart = Callable[[Part, Group, Group, int, int], SplitSizes]


class PartLayout:
    """The open part's size, the closed parts and their groups, as lines of given sizes arrive."""

    def __init__(self, limits: InputLimits, job_limits: JobLimits, max_jobs: int | None = None) -> None:
        self._limits, self._job_limits, self._max_jobs = limits, job_limits, max_jobs
        self.groups: list[Group] = []
        self.parts = 0  # parts closed so far (and the number the open one will get)
        self.is_open = False
        self.records = 0  # in the open part
        self.bytes = 0
        self.sources = 0

    def must_close(self, incoming: int, records: int = 1) -> bool:
        """Whether the open part must be closed before `records` inputs of `incoming` bytes."""
        return self.is_open and (self._file_full(incoming, records) or self._group_full(incoming, records))

    def open(self, incoming: int, records: int = 1) -> Group:
        """Open a part for `records` inputs of `incoming` bytes (in a new group when the last is full)."""
        if not self.groups or self._group_full(incoming, records) or self._group_at_part_limit():
            self._new_group()
        self.is_open = True
        return self.groups[-1]

    def add(self, size: int, records: int = 1) -> None:
        """One user record of `records` inputs and `size` bytes."""
        self.records += records
        self.bytes += size
        self.sources += 1

    def close(self) -> Part:
        """Close the open part into the last group."""
        part = Part(self.parts, self.records, self.bytes, self.sources)
        self.groups[-1].parts.append(part)
        self.is_open, self.records, self.bytes, self.sources = False, 0, 0, 0
        self.parts += 1
        return part

    def rebalance(self, move: MovePart, split: SplitPart) -> None:
        """Bring the last group up to min_records_per_job from the one before; `move` and `split` do the
        I/O (or nothing, for a plan) before the layout records the change."""
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
                move(part, previous, last)
                previous.parts.remove(part)
                last.parts.insert(0, part)
            else:
                keep, number = part.records - moving, self.parts
                cut = split(part, previous, last, keep, number)
                if cut.kept_records >= part.records:
                    return  # the part is one record: nothing smaller can move
                self.parts += 1
                moved = Part(
                    number, part.records - cut.kept_records, cut.moved_bytes, part.sources - cut.kept_sources
                )
                part.records, part.bytes, part.sources = cut.kept_records, cut.kept_bytes, cut.kept_sources
                last.parts.insert(0, moved)

    def _file_full(self, incoming: int, records: int = 1) -> bool:
        return (
            self.records + records > self._limits.max_records_per_file
            or self.bytes + incoming > self._limits.max_bytes_per_file
        )

    def _group_full(self, incoming: int, records: int = 1) -> bool:
        group = self.groups[-1]
        present = group.records + self.records
        if not present:
            return False  # a record is never alone in a group of its own making
        limits = self._job_limits
        return (
            present + records > limits.max_records_per_job
            or group.bytes + self.bytes + incoming > limits.max_bytes_per_job
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


def oversized_line(sizes: list[int], most: int | None) -> str | None:
    """Why a record whose input lines take `sizes` bytes cannot be sent (None if it can): one line over the
    backend's per-line limit (InputLimits.max_bytes_per_line) would fail its whole remote job."""
    largest = max(sizes, default=0)
    if most is None or largest <= most:
        return None
    return (
        f"the record's input line is {largest:,} bytes, over the {most:,} one record may take "
        "(SageMaker's MaxPayloadInMB; a larger record fails its whole transform job): raise "
        "MaxPayloadInMB (at most 100) or chunk the text (source.chunking)"
    )
