from __future__ import annotations

import pytest

from osbatch.steps.support.seen_ids import SeenIds


def test_each_id_is_new_once_and_growth_loses_none() -> None:
    # Given a table that starts with 8 slots, and 10,000 ids, so it grows many times
    seen = SeenIds(slots=8)
    ids = [f"doc-{n}" for n in range(10_000)]
    # When every id is added, then every id again
    first = [seen.add(doc_id) for doc_id in ids]
    second = [seen.add(doc_id) for doc_id in ids]
    # Then each is new the first time only, and the table holds each once
    assert all(first) and not any(second)
    assert len(seen) == 10_000


def test_ids_that_differ_only_slightly_are_different() -> None:
    # Given ids that share prefixes and lengths
    seen = SeenIds()
    # When they are added / Then none is mistaken for another
    assert [seen.add(doc_id) for doc_id in ("1", "11", "1 ", "", "\u0661")] == [True] * 5


def test_slots_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        SeenIds(slots=12)


def test_membership_answers_for_added_ids_only() -> None:
    # Given ids added past a table growth
    seen = SeenIds(slots=4)
    for number in range(100):
        seen.add(f"id-{number}")
    # Then each added id is in it, and others are not
    assert all(f"id-{number}" in seen for number in range(100))
    assert not any(f"other-{number}" in seen for number in range(100))
