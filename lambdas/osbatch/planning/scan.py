"""One pass over an input file, judged as Prepare judges it: records, bad lines and why, passages, tokens,
and the parts and remote jobs Prepare would cut it into.

The same code decides each outcome: ingest.records parses and checks id and text, the backend writes the
input line whose bytes count against its limits, planning.layout cuts parts and groups, chunking splits
text. Memory is flat in the file: a line at a time (ingest.readers.split_lines), counters, at most
MAX_REASONS distinct reasons and MAX_EXAMPLES example bad lines.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from osbatch import jsonlines
from osbatch.backends.base import BatchBackend, InputLimits, PassageInput
from osbatch.chunking import Chunker, NotChunkable
from osbatch.config import PipelineConfig
from osbatch.ingest.readers import MAX_LINE_BYTES, READ_SIZE, split_lines
from osbatch.ingest.records import RecordError, parse_record, require_id, require_text
from osbatch.planning.layout import Group, Part, PartLayout, SplitSizes, oversized_line
from osbatch.record_paths import RecordPath

MAX_REASONS = 50  # distinct reasons kept with their counts; the rest are counted as OTHER_REASONS
OTHER_REASONS = "other reasons"
MAX_EXAMPLES = 10
# A file is not JSONL when none of its first lines is a JSON object: no sense reading a gigabyte of CSV.
SNIFF_LINES = 1000


class NotJsonl(ValueError):
    """A file none of whose first lines is a JSON object."""


class Tokens(Protocol):
    def count(self, text: str) -> int: ...


class EstimatedTokens:
    """A token per 4 bytes of UTF-8: "a token is about 4 characters of English text" (OpenAI, "What are
    tokens and how to count them", help.openai.com/en/articles/4936856). An estimate, labelled as one; the
    exact count needs the model's tokenizer, which osbatch has for all-MiniLM-L6-v2 only."""

    how = "estimate: UTF-8 bytes / 4 (OpenAI's rule of thumb, about 4 characters of English per token)"

    def count(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8", errors="surrogatepass")) / 4)


@dataclass(frozen=True)
class BadLine:
    file: str
    line: int
    stage: str  # as Prepare would dead-letter it: parse, or chunk
    reason: str


@dataclass
class FileScan:
    name: str
    bytes: int = 0
    lines: int = 0
    records: int = 0  # non-blank lines, as Prepare counts records_in
    valid: int = 0
    blank_lines: int = 0
    bad_lines: int = 0
    passages: int = 0
    tokens: int = 0
    groups: list[Group] = field(default_factory=list)


@dataclass
class BadLines:
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[BadLine] = field(default_factory=list)

    def add(self, bad: BadLine) -> None:
        key = bad.reason if bad.reason in self.reasons or len(self.reasons) < MAX_REASONS else OTHER_REASONS
        self.reasons[key] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(bad)


def scan_file(
    name: str,
    pieces: Iterable[bytes],
    *,
    config: PipelineConfig,
    backend: BatchBackend,
    tokens: Tokens,
    chunker: Chunker | None,
    bad: BadLines,
) -> FileScan:
    """The file's counts and remote jobs; raises NotJsonl, or planning.layout.TooManyRemoteJobs."""
    id_path, text_path = RecordPath(config.source.id_path), RecordPath(config.source.text_path)
    layout = PartLayout(
        InputLimits(
            min(backend.limits.max_records_per_file, config.inference.max_records_per_part),
            backend.limits.max_bytes_per_file,
        ),
        backend.job_limits,
        config.inference.max_remote_jobs,
    )
    scan = FileScan(name)
    objects = 0

    def counted(pieces: Iterable[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            scan.bytes += len(piece)
            yield piece

    for number, (_, raw) in enumerate(
        split_lines(counted(pieces), 0, max_line_bytes=MAX_LINE_BYTES, key=name), start=1
    ):
        scan.lines = number
        if not raw.strip():
            scan.blank_lines += 1
            continue
        scan.records += 1
        try:
            record = parse_record(raw, at_object_start=number == 1)
            objects += 1
            require_id(record, id_path, config.source.id_path)
            text = require_text(record, text_path, config.source.text_path)
        except RecordError as error:
            if not objects and scan.records >= SNIFF_LINES:
                raise NotJsonl(_not_jsonl(name, scan.records, bad)) from None
            scan.bad_lines += 1
            bad.add(BadLine(name, number, "parse", str(error)))
            continue
        if chunker is not None:
            try:
                passages = [
                    PassageInput(n, p.text, p.start, p.end) for n, p in enumerate(chunker.passages(text))
                ]
            except NotChunkable as refusal:
                scan.bad_lines += 1
                bad.add(BadLine(name, number, "chunk", refusal.reason))
                continue
            adds = len(passages), sum(tokens.count(passage.text) for passage in passages)
            # The lines Prepare writes for them (steps/support/passages.py), so the parts are Prepare's.
            lines = backend.passage_lines(number, passages, text_path.holding)
        else:
            adds = 0, tokens.count(text)
            lines = [(backend.input_line(record, number, text), 1)]
        sizes = [len(jsonlines.dump_line(line)) for line, _ in lines]
        too_big = oversized_line(sizes, backend.limits.max_bytes_per_line)
        if too_big is not None:  # Prepare dead-letters it (steps/support/parts.py)
            scan.bad_lines += 1
            bad.add(BadLine(name, number, "chunk" if chunker is not None else "parse", too_big))
            continue
        scan.passages, scan.tokens = scan.passages + adds[0], scan.tokens + adds[1]
        size, inputs = sum(sizes), sum(n for _, n in lines)
        if layout.must_close(size, inputs):
            layout.close()
        if not layout.is_open:
            layout.open(size, inputs)
        layout.add(size, inputs)
        scan.valid += 1
    if scan.records and not objects:
        raise NotJsonl(_not_jsonl(name, scan.records, bad))
    if layout.is_open:
        layout.close()
    layout.rebalance(_nothing_to_move, _split_by_share)
    scan.groups = layout.groups
    return scan


def read_pieces(handle: BinaryIO) -> Iterator[bytes]:
    """A binary file's contents a READ_SIZE piece at a time (what split_lines takes)."""
    while piece := handle.read(READ_SIZE):
        yield piece


def _not_jsonl(name: str, records: int, bad: BadLines) -> str:
    first = next((example for example in bad.examples if example.file == name), None)
    why = f" (line {first.line}: {first.reason})" if first else ""
    return (
        f"{name} is not JSONL: none of its first {records} lines is a JSON object{why}; "
        "osbatch reads one JSON object per line"
    )


def _nothing_to_move(_part: Part, _from: Group, _to: Group) -> None:
    """A plan moves no file: the layout records the move."""


def _split_by_share(part: Part, _from: Group, _to: Group, keep: int, _number: int) -> SplitSizes:
    """A plan keeps no records, so a split part's bytes are shared by record count."""
    kept = part.bytes * keep // part.records
    return SplitSizes(keep, keep, kept, part.bytes - kept)
