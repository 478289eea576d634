"""reliability/accounting.py: every record's fate from the input bytes, the index and the dead letters."""

from __future__ import annotations

import json
from typing import Any

from reliability.accounting import account, input_records

SOURCE = "s3://in/input/e2e-reliability/a.jsonl"


def body(*lines: bytes) -> bytes:
    return b"\n".join(lines) + b"\n"


def rec(doc_id: str, text: str) -> bytes:
    return json.dumps({"_id": doc_id, "text": text}).encode()


def letter(line: int | None, record: Any = None) -> dict[str, Any]:
    return {"source": SOURCE, "line": line, "stage": "parse", "reason": "bad", "record": record}


def test_records_are_the_non_blank_lines_with_what_a_lenient_reader_finds() -> None:
    # Given a file with a BOM, CRLF, a blank line, invalid UTF-8 and NaN
    data = b"\xef\xbb\xbf" + rec("a", "x") + b"\r\n\r\n" + b'{"_id": "b\xe9"}\n{"_id": "c", "v": NaN}'
    # When it is read
    records = input_records(SOURCE, data)
    # Then blank lines are not records, line numbers are the file's, and ids are found where readable
    assert [(r.line, r.doc_id) for r in records] == [(1, "a"), (3, None), (4, "c")]


def test_indexed_dead_lettered_and_lost_are_told_apart() -> None:
    # Given three records: one in the index, one dead-lettered, one nowhere
    records = input_records(SOURCE, body(rec("a", "x"), rec("b", "y"), rec("c", "z")))
    docs = {"a": {"chunk": "x"}}
    # When they are accounted for
    tally = account(records, docs, [letter(2)], {"a"}, 1)
    # Then the third is lost, and nothing is duplicated
    assert (tally.records_in, tally.indexed, tally.dead_lettered, tally.lost, tally.duplicated) == (
        3,
        1,
        1,
        1,
        0,
    )
    assert tally.lost_examples == [f"{SOURCE} line 3 (id c)"]


def test_a_document_holding_another_records_text_is_not_that_record() -> None:
    # Given a record whose id is in the index with different text (another record's, or stale)
    records = input_records(SOURCE, body(rec("a", "x")))
    # Then it is not indexed: it is lost
    assert account(records, {"a": {"chunk": "other"}}, [], {"a"}, 1).lost == 1


def test_a_duplicate_id_is_indexed_once_by_its_last_line() -> None:
    # Given two lines with one id, the later one's text in the index
    records = input_records(SOURCE, body(rec("a", "first"), rec("a", "second")))
    # Then both are indexed (the first written over), nothing lost or duplicated
    tally = account(records, {"a": {"chunk": "second"}}, [], {"a"}, 1)
    assert (tally.indexed, tally.lost, tally.duplicated) == (2, 0, 0)


def test_a_record_both_indexed_and_dead_lettered_or_lettered_twice_is_duplicated() -> None:
    # Given one record indexed and dead-lettered, and one with two dead letters
    records = input_records(SOURCE, body(rec("a", "x"), rec("b", "y")))
    tally = account(records, {"a": {"chunk": "x"}}, [letter(1), letter(2), letter(2)], {"a"}, 1)
    # Then both count as duplicated
    assert tally.duplicated == 2


def test_a_file_level_letter_stands_for_the_records_left_and_no_more() -> None:
    # Given a failed job: two records nowhere, and a file-level letter for them
    records = input_records(SOURCE, body(rec("a", "x"), rec("b", "y")))
    tally = account(records, {}, [letter(None, {"file": SOURCE, "records": 2})], set(), 0)
    # Then they are dead-lettered, not lost
    assert (tally.dead_lettered, tally.lost, tally.duplicated) == (2, 0, 0)
    # But a letter for more records than are left duplicates the difference
    over = account(records, {"a": {"chunk": "x"}}, [letter(None, {"file": SOURCE, "records": 2})], {"a"}, 1)
    assert (over.indexed, over.dead_lettered, over.duplicated) == (1, 1, 1)


def test_documents_no_input_line_explains_are_duplicates() -> None:
    # Given an index holding an id no line has, and a count above its distinct ids
    records = input_records(SOURCE, body(rec("a", "x")))
    tally = account(records, {"a": {"chunk": "x"}}, [], {"a", "stray"}, 3)
    # Then both show as duplicated
    assert tally.duplicated == 2
