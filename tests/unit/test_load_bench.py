"""bench/load.py's parts that decide its verdicts: the generated input, conservation from the index and the
dead letters, and peak memory from the sandboxes' REPORT lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from bench.load_accounting import conserve, sample_vectors_match
from bench.load_data import doc_id, record_number, text_lines, text_of, vector_lines, vector_of
from bench.load_memory import LogWindow
from local.aws.sandbox.logs import log_file


class ScrollingIndex:
    """An index as the accounting reads it: _count, a scroll in pages of two, refresh."""

    def __init__(self, docs: dict[str, dict[str, Any]], count: int | None = None) -> None:
        self.docs, self._count = docs, len(docs) if count is None else count
        self.indices = self
        self.cleared = False

    def refresh(self, *, index: str) -> None:
        pass

    def count(self, *, index: str) -> dict[str, int]:
        return {"count": self._count}

    def search(self, *, index: str, body: dict[str, Any], scroll: str, size: int) -> dict[str, Any]:
        return self._page(0)

    def scroll(self, *, scroll_id: str, scroll: str) -> dict[str, Any]:
        return self._page(int(scroll_id))

    def clear_scroll(self, *, scroll_id: str) -> None:
        self.cleared = True

    def _page(self, start: int) -> dict[str, Any]:
        hits = [{"_id": i, "_source": d} for i, d in list(self.docs.items())[start : start + 2]]
        return {"hits": {"hits": hits}, "_scroll_id": str(start + 2)}


def letter(number: int | str) -> dict[str, Any]:
    ident = doc_id(number) if isinstance(number, int) else number
    return {"stage": "index", "reason": "r", "line": None, "record": {"_id": ident}}


def test_generated_records_can_be_regenerated_one_by_one_as_the_file_holds_them() -> None:
    # Given the first 2,500 vector lines (three generator blocks) and three text lines
    lines = list(vector_lines(2500, 8))
    texts = [orjson.loads(line) for line in text_lines(3)]
    # Then each line's id names its record, and any one record's vector and text come back alone
    for number in (0, 999, 1000, 2499):
        record = orjson.loads(lines[number])
        assert record["_id"] == doc_id(number) and record_number(record["_id"]) == number
        assert np.array_equal(np.asarray(record["vector"], dtype=np.float32), vector_of(number, 8))
    assert [t["text"] for t in texts] == [text_of(n) for n in range(3)]
    assert record_number("load-1") is None and record_number("other-00000001") is None


def test_indexed_dead_lettered_lost_and_duplicated_are_told_apart_from_the_evidence() -> None:
    # Given six records: 0-3 in the index, 3 also dead-lettered, 4 dead-lettered twice, 5 nowhere, and a
    # document no record has the id of
    docs: dict[str, dict[str, Any]] = {doc_id(n): {} for n in range(4)} | {"stranger": {}}
    client = ScrollingIndex(docs)
    # When they are accounted for
    tally = conserve(client, "i", 6, [letter(3), letter(4), letter(4)])
    # Then each is counted once where it is, and what is wrong is named
    assert (tally.indexed, tally.dead_lettered, tally.lost) == (4, 1, 1)
    assert tally.duplicated == 3  # 3 indexed and lettered, 4's second letter, the stranger
    assert not tally.clean and client.cleared
    assert any("[5]" in example for example in tally.examples)


def test_a_count_above_the_documents_a_scan_finds_is_a_duplicate() -> None:
    # Given every record indexed once by the scan, but _count one higher
    tally = conserve(ScrollingIndex({doc_id(n): {} for n in range(3)}, count=4), "i", 3, [])
    # Then the difference is counted as duplicated
    assert (tally.indexed, tally.lost, tally.duplicated) == (3, 0, 1)


def test_a_document_holding_another_text_is_not_its_record() -> None:
    # Given record 1 in the index with a text that is not its own
    docs = {doc_id(0): {"chunk": text_of(0)}, doc_id(1): {"chunk": "stale"}}
    # When texts are checked
    tally = conserve(ScrollingIndex(docs), "i", 2, [], expected_text=text_of)
    # Then it is neither indexed nor accounted for
    assert (tally.indexed, tally.wrong_content, tally.lost) == (1, 1, 1)


def test_a_letter_without_a_readable_id_stands_for_one_record_left_over() -> None:
    # Given two records, one indexed, and a letter whose record never parsed
    tally = conserve(ScrollingIndex({doc_id(0): {}}), "i", 2, [{"record": "{not json", "line": None}])
    # Then it accounts for the other record
    assert (tally.indexed, tally.dead_lettered, tally.lost, tally.duplicated) == (1, 1, 0, 0)
    assert tally.clean


def test_peak_memory_is_read_from_the_report_lines_written_since_the_window_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function's log with an earlier invocation using 900 MB
    monkeypatch.setenv("OSBATCH_HOME", str(tmp_path))
    path = log_file("fn")
    path.parent.mkdir(parents=True)
    report = "s REPORT RequestId: {}\tDuration: 1.00 ms\tMemory Size: 1024 MB\tMax Memory Used: {} MB\n"
    path.write_text(report.format("a", 900))
    window = LogWindow("fn", 1024)
    # When two more invocations report, and a third sandbox is killed past its size
    with path.open("a") as log:
        log.write(report.format("b", 120) + report.format("c", 131))
    used = window.read()
    with path.open("a") as log:
        log.write("s r Runtime exited with error: signal: killed (Max Memory Used: 1030 MB)\n")
    killed = window.read()
    # Then only the window's lines count: the peak of the two, then the kill, which is over the size
    assert (used.invocations, used.peak_mb, used.killed, used.under_configured) == (2, 131, 0, True)
    assert (killed.peak_mb, killed.killed, killed.under_configured) == (1030, 1, False)


class VectorIndex:
    def __init__(self, docs: dict[str, list[float]]) -> None:
        self.docs = docs

    def mget(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "docs": [
                {"_id": i, "found": True, "_source": {"v": self.docs[i]}} if i in self.docs else {"_id": i}
                for i in body["ids"]
            ]
        }


def test_a_sampled_document_with_another_vector_is_wrong_and_a_missing_one_is_left_to_conservation() -> None:
    # Given records 0 and 1 indexed, 1 with another vector, and record 2 not in the index
    docs = {doc_id(0): vector_of(0, 4).tolist(), doc_id(1): [0.0, 0.0, 0.0, 0.0]}
    # When the sample is checked
    wrong = sample_vectors_match(VectorIndex(docs), "i", "v", [0, 1, 2], lambda n: vector_of(n, 4))
    # Then only the document holding another vector is wrong
    assert wrong == [doc_id(1)]
