"""The CI subset of `make reliability` (reliability/, docs/reliability.md): the bad-input scenario end to
end, every record accounted for from the index and the dead-letter objects alone."""

from __future__ import annotations

from typing import Any

import pytest

from local.runtime import LocalRuntime
from reliability.bad_input import bad_input_uploads
from reliability.harness import Harness
from reliability.scenarios import bad_input

pytestmark = pytest.mark.integration
PIPELINE = "e2e-reliability"
GOOD = 20  # good records per file at scale 1 (reliability/bad_input.py)


def test_bad_input_ends_in_the_index_or_in_one_dead_letter_each(runtime: LocalRuntime, stack: Any) -> None:
    # Given six uploads of bad input around good records (a BOM, CRLF, invalid UTF-8, a truncated last
    # line, NaN, Infinity and wrong-dimension vectors, a 10 MB line, duplicate ids, a key with spaces and
    # non-ASCII, an empty file, gzip bytes named .jsonl)
    uploads = bad_input_uploads(scale=1)
    gzip_lines = len([line for line in uploads[-1].body.split(b"\n") if line.strip()])

    # When they are uploaded at once and every job ends
    row = bad_input(Harness(runtime, stack), scale=1)

    # Then no record is lost and none is duplicated, counted from the index and the dead letters
    tally = row.tally
    assert (tally.lost, tally.duplicated) == (0, 0), (tally.lost_examples, tally.duplicated_examples)
    assert tally.records_in == tally.indexed + tally.dead_lettered
    # And the good records are indexed: four files' worth (the 10 MB line's neighbours too), the duplicates'
    # later lines over the earlier
    assert tally.indexed == GOOD + GOOD + (GOOD + 2) + (GOOD + 3)
    # And each bad line has its dead letter: 2 in the first file, 4 vectors, the gzip file's every line,
    # and the 10 MB line alone, which Prepare keeps from the transform job it would fail (MaxPayloadInMB)
    assert tally.dead_lettered == 2 + 4 + gzip_lines + 1
    assert set(row.states.values()) == {"COMPLETED"}
    reasons = " ".join(tally.reasons)
    for reason in ("not UTF-8", "malformed JSON", "mapper_parsing_exception", "MaxPayloadInMB"):
        assert reason in reasons
