"""The CLI sits above the product and imports local/ only in the commands that act on the local runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What `osbatch <args>` has imported when the parser is done (SystemExit from --help) or the command has
# been looked up, printed as JSON by a fresh interpreter so nothing this test process imported counts.
PROBE = """
import json, sys
from cli import main
try:
    main.build_parser().parse_args(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("args", [("--help",), ("jobs", "--help"), ("jobs",), ("plan", "--help")])
def test_parsing_a_command_line_imports_neither_local_nor_the_product(args: tuple[str, ...]) -> None:
    # Given a fresh interpreter / When `osbatch` parses a command line
    modules = modules_after(*args)
    # Then neither the local runtime nor the product nor boto3 has been imported
    loaded = sorted(
        m for m in modules if m.split(".")[0] in {"local", "osbatch", "boto3", "botocore", "infra"}
    )
    assert loaded == []
    assert "cli.main" in modules


def test_the_commands_module_imports_no_local_runtime_at_its_top() -> None:
    # Given a fresh interpreter / When the commands module is imported, as main() does to run one
    result = subprocess.run(
        [sys.executable, "-c", "import json, sys, cli.commands; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = set(json.loads(result.stdout.splitlines()[-1]))
    # Then local/ is still not imported: each command imports what it uses itself
    assert sorted(m for m in modules if m.split(".")[0] == "local") == []
