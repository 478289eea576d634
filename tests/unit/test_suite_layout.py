"""The suite's own layout: it runs as one pytest session with rootdir imports, and what its modules share
lives in conftest.py and helpers.py."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# `from tests.unit.test_x import ...`, `import tests.unit.test_x`, `from tests.unit import test_x`, and the
# same for a conftest (pytest loads those itself; importing one loads it a second time).
IMPORTS_A_TEST_MODULE = re.compile(
    r"^\s*(?:from|import)\s+tests(?:\.\w+)*\.(?:test_\w+|conftest)\b|^\s*from\s+tests(?:\.\w+)*\s+import\s+.*\b(?:test_\w+|conftest)\b"
)


def test_no_two_test_modules_share_a_basename() -> None:
    # Given every test module under tests/
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    # Then each basename occurs once (pytest would refuse to collect the second as an import mismatch)
    assert [name for name, count in names.items() if count > 1] == []


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    # Given every Python file under tests/
    lines = {
        f"{path.relative_to(TESTS)}:{number}": line
        for path in sorted(TESTS.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    }
    # Then none imports from a test module or a conftest: what modules share is in helpers.py or a fixture
    assert [where for where, line in lines.items() if IMPORTS_A_TEST_MODULE.search(line)] == []


def test_the_import_rule_catches_each_form() -> None:
    # Given the forms a cross-module import takes, and imports of helpers
    caught = [
        "from tests.unit.test_finish import JOB",
        "import tests.integration.test_end_to_end",
        "from tests.unit import test_handlers",
        "from tests.unit.conftest import pipeline_dict",
    ]
    allowed = ["from tests.unit.helpers import JOB", "from tests.helpers import eventually"]
    # Then the rule flags the first and lets the others through
    assert [line for line in caught + allowed if IMPORTS_A_TEST_MODULE.search(line)] == caught
