"""What happened to every input record, computed from the input bytes, the index and the dead-letter
objects only: never from osbatch's own counts or report.

A record is a non-blank line of an input file (split on LF, as JSON Lines defines a line: jsonlines.org).
It is *indexed* when a document with its id is in the index and holds its text, or a later line of the
same file with the same id was indexed over it (osbatch writes with external versions from the line
number, so the later line wins). It is *dead-lettered* when a dead letter names its file and line, or a
file-level dead letter (a failed job or remote job) stands for it. *Lost*: neither. *Duplicated*: both,
a line with two dead letters, a file-level letter standing for more records than are unaccounted, or a
document in the index that no input line has the id of.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MGET_BATCH = 500  # ids per _mget request


@dataclass(frozen=True)
class InputRecord:
    source: str  # s3://bucket/key, as dead letters cite it
    line: int  # 1-based line number in the file
    doc_id: str | None  # None when the line has no readable id (its record cannot be in the index)
    text: Any


@dataclass
class Tally:
    records_in: int = 0
    indexed: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    lost_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    replayed: int = 0  # dead-lettered records that `osbatch replay` indexed afterwards


def input_records(source: str, body: bytes, id_key: str = "_id", text_key: str = "text") -> list[InputRecord]:
    """Every non-blank line of the file, with the id and text a lenient reader finds in it (the standard
    library's json, which takes NaN and Infinity; a BOM on the first line is dropped)."""
    records = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        doc_id, text = None, None
        try:
            value = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except (UnicodeDecodeError, ValueError):
            value = None
        if isinstance(value, dict):
            found = value.get(id_key)
            if isinstance(found, str | int) and not isinstance(found, bool) and found != "":
                doc_id = str(found)
            text = value.get(text_key)
        records.append(InputRecord(source, number, doc_id, text))
    return records


def indexed_docs(client: Any, index: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The documents of these ids that the index holds (`_mget`), by id."""
    wanted = sorted(set(ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), MGET_BATCH):
        batch = wanted[start : start + MGET_BATCH]
        answer = client.mget(index=index, body={"ids": batch}, params={"_source_includes": "chunk"})
        for doc in answer["docs"]:
            if doc.get("found"):
                found[doc["_id"]] = doc.get("_source") or {}
    return found


def all_index_ids(client: Any, index: str) -> set[str]:
    """Every id in the index (a match_all scroll of ids only): finds documents no input line explains."""
    ids: set[str] = set()
    page = client.search(
        index=index, body={"query": {"match_all": {}}, "_source": False}, scroll="1m", size=1000
    )
    while page["hits"]["hits"]:
        ids.update(hit["_id"] for hit in page["hits"]["hits"])
        page = client.scroll(scroll_id=page["_scroll_id"], scroll="1m")
    client.clear_scroll(scroll_id=page["_scroll_id"])
    return ids


def account(
    records: Sequence[InputRecord],
    docs: Mapping[str, Mapping[str, Any]],
    letters: Sequence[Mapping[str, Any]],
    index_ids: set[str],
    index_count: int,
    *,
    replayed: bool = False,
) -> Tally:
    """Each record's fate from the evidence; see the module's docstring for the definitions. replayed: the
    dead letters were replayed since (`osbatch replay`), so a record in the index and in a dead letter was
    indexed by the replay, once, not twice."""
    tally = Tally(records_in=len(records))
    by_line: Counter[tuple[str, int]] = Counter()
    file_level: dict[str, int] = defaultdict(int)
    for letter in letters:
        tally.reasons[f"{letter.get('stage')}: {str(letter.get('reason', ''))[:240]}"] += 1
        if letter.get("line") is not None:
            by_line[(str(letter["source"]), int(letter["line"]))] += 1
        elif isinstance(letter.get("record"), dict) and "records" in letter["record"]:
            file_level[str(letter["source"])] += int(letter["record"]["records"])
    last_line: dict[tuple[str, str], int] = {}
    for record in records:
        if record.doc_id is not None:
            last_line[(record.source, record.doc_id)] = record.line
    unaccounted: dict[str, list[InputRecord]] = defaultdict(list)
    for record in records:
        lettered = by_line.get((record.source, record.line), 0)
        indexed = _indexed(record, docs, last_line)
        if lettered > 1:
            tally.duplicated += lettered - 1
            tally.duplicated_examples.append(f"{record.source} line {record.line}: {lettered} dead letters")
        if indexed and lettered and replayed:
            tally.replayed += 1
        elif indexed and lettered:
            tally.duplicated += 1
            tally.duplicated_examples.append(f"{record.source} line {record.line}: indexed and dead-lettered")
        if indexed:
            tally.indexed += 1
        elif lettered:
            tally.dead_lettered += 1
        else:
            unaccounted[record.source].append(record)
    for source, left in unaccounted.items():
        covered = min(len(left), file_level[source])
        file_level[source] -= covered
        tally.dead_lettered += covered
        for record in left[covered:]:
            tally.lost += 1
            tally.lost_examples.append(f"{record.source} line {record.line} (id {record.doc_id})")
    for source, extra in file_level.items():  # letters standing for records already accounted for
        if extra:
            tally.duplicated += extra
            tally.duplicated_examples.append(f"{source}: a file-level letter for {extra} accounted records")
    known = {record.doc_id for record in records if record.doc_id is not None}
    phantoms = index_ids - known
    if phantoms or index_count != len(index_ids):
        tally.duplicated += len(phantoms) + abs(index_count - len(index_ids))
        tally.duplicated_examples.append(f"index holds ids no input line has: {sorted(phantoms)[:3]}")
    return tally


def _indexed(
    record: InputRecord, docs: Mapping[str, Mapping[str, Any]], last: Mapping[tuple[str, str], int]
) -> bool:
    if record.doc_id is None or record.doc_id not in docs:
        return False
    if last[(record.source, record.doc_id)] != record.line:
        return True  # a later line with this id was written over it
    return docs[record.doc_id].get("chunk") == record.text
