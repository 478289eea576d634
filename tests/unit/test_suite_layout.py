"""The suite runs as one pytest session with rootdir imports, so no two test modules may share a name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename() -> None:
    # Given every test module under tests/
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    # Then each basename occurs once (pytest would refuse to collect the second as an import mismatch)
    assert [name for name, count in names.items() if count > 1] == []
