"""Conservation for the load runs, computed from the index and the dead-letter objects only, never from
osbatch's counts, and streamed: a million records cost a few megabytes of bitmaps, not a million objects.

The generated input (bench/load_data.py) has one record per line, record n with id `load-<n>`, so the
index's ids name the lines they came from. A record is *indexed* when the index holds a document with its
id (and, for texts, its text); *dead-lettered* when a dead letter names its id; *lost* when neither;
*duplicated* when both, when two letters name it, or for every document no input line has the id of.
The node's `_count` must equal the ids a full scan finds (a second copy of a document would show there).
reliability/accounting.py does the same for small hand-made files with bad lines in them, in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.load_data import record_number

SCROLL_PAGE = 10_000


@dataclass
class Conservation:
    records_in: int
    indexed: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    index_count: int = 0
    wrong_content: int = 0  # documents whose id is an input's but whose content is not that record's
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.wrong_content == 0

    def describe(self) -> str:
        return (
            f"{self.records_in} in, {self.indexed} indexed, {self.dead_lettered} dead-lettered, "
            f"{self.lost} lost, {self.duplicated} duplicated (node _count {self.index_count}"
            + (f", {self.wrong_content} with another record's content" if self.wrong_content else "")
            + ")"
        )


def scan(client: Any, index: str, source: list[str] | bool) -> Iterator[dict[str, Any]]:
    """Every document of the index, in index order (a scroll sorted by `_doc`, the cheapest order)."""
    page = client.search(
        index=index,
        body={"query": {"match_all": {}}, "_source": source, "sort": ["_doc"]},
        scroll="5m",
        size=SCROLL_PAGE,
    )
    try:
        while page["hits"]["hits"]:
            yield from page["hits"]["hits"]
            page = client.scroll(scroll_id=page["_scroll_id"], scroll="5m")
    finally:
        client.clear_scroll(scroll_id=page["_scroll_id"])


def conserve(
    client: Any,
    index: str,
    records: int,
    letters: Iterable[Mapping[str, Any]],
    *,
    expected_text: Callable[[int], str] | None = None,
) -> Conservation:
    """Account for records 0 .. records - 1 from the index and the dead letters. expected_text: check
    each document's `chunk` against its record's text (the full path); otherwise ids only."""
    client.indices.refresh(index=index)
    tally = Conservation(records_in=records, index_count=int(client.count(index=index)["count"]))
    indexed = np.zeros(records, dtype=np.bool_)
    letters_per_record = np.zeros(records, dtype=np.uint8)
    unmatched_letters = 0
    scanned = 0
    for hit in scan(client, index, ["chunk"] if expected_text else False):
        scanned += 1
        number = record_number(hit["_id"])
        if number is None or number >= records:
            tally.duplicated += 1  # a document no input line explains
            _example(tally, f"index holds {hit['_id']!r}, which no input line has")
            continue
        if expected_text and (hit.get("_source") or {}).get("chunk") != expected_text(number):
            tally.wrong_content += 1
            _example(tally, f"{hit['_id']} holds another text")
            continue
        indexed[number] = True
    if tally.index_count != scanned:
        tally.duplicated += abs(tally.index_count - scanned)
        _example(tally, f"_count {tally.index_count} but the scan found {scanned} documents")
    for letter in letters:
        record = letter.get("record")
        number = record_number(str(record.get("_id"))) if isinstance(record, dict) else None
        if number is None or number >= records:
            unmatched_letters += 1
            _example(tally, f"a dead letter names no input record: {str(letter)[:160]}")
            continue
        letters_per_record[number] = min(letters_per_record[number] + 1, 255)
    lettered = letters_per_record > 0
    tally.indexed = int(indexed.sum())
    tally.dead_lettered = int((lettered & ~indexed).sum())
    both = int((lettered & indexed).sum())
    extra_letters = int(letters_per_record.sum(dtype=np.int64) - lettered.sum())
    tally.duplicated += both + extra_letters
    neither = int((~lettered & ~indexed).sum())
    # A letter that names no record (it never parsed) may stand for one record not otherwise accounted for.
    covered = min(neither, unmatched_letters)
    tally.dead_lettered += covered
    tally.lost = neither - covered
    if tally.lost:
        first = np.flatnonzero(~lettered & ~indexed)[:5]
        _example(tally, f"lost records (first): {[int(n) for n in first]}")
    return tally


def sample_vectors_match(
    client: Any, index: str, field_name: str, sample: Iterable[int], expected: Callable[[int], np.ndarray]
) -> list[str]:
    """The sampled documents' vectors against their records' (the k-NN plugin stores float32 and derives
    _source from it: equal as float32, bit for bit); the ids whose document holds another vector. A sampled
    record with no document is left to conserve(), which finds it dead-lettered or lost."""
    from bench.load_data import doc_id

    numbers = list(sample)
    found = client.mget(index=index, body={"ids": [doc_id(n) for n in numbers]})["docs"]
    wrong = []
    for number, doc in zip(numbers, found, strict=True):
        if not doc.get("found"):
            continue
        vector = (doc.get("_source") or {}).get(field_name)
        if vector is None or not np.array_equal(np.asarray(vector, dtype=np.float32), expected(number)):
            wrong.append(doc["_id"])
    return wrong


def _example(tally: Conservation, text: str) -> None:
    if len(tally.examples) < 10:
        tally.examples.append(text)
