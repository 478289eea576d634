"""Every command in README.md is run by a test or by `make demo` (tests/readme_commands.py says which), and
the ones that need no runtime run here."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from cli.main import build_parser, main
from local.demo_backends import DEMO_BACKENDS
from tests.readme_commands import (
    DATA_FILE,
    README,
    ROOT,
    Command,
    How,
    commands_covered_by,
    coverage_of,
    hidden_commands,
    readme_commands,
)

README_TEXT = README.read_text(encoding="utf-8")
SAMPLE = ROOT / "samples" / "python-docs" / "part-1.jsonl"


def test_commands_are_read_from_shell_blocks_without_their_comments() -> None:
    # Given a README with a shell block (comments, quotes, a blank line), an output block and a YAML block
    text = (
        "# Title\n```bash\nmake demo   # the demo\n\n"
        '.venv/bin/osbatch search "gzip a file" --pipeline p\n```\n'
        "```\nFILE  STATE\n```\n```yaml\nname: x\n```\n"
    )
    # When its commands are read
    commands = readme_commands(text)
    # Then they are the shell block's lines, comment-free and quoted as a shell would split them
    assert [(c.text, c.line) for c in commands] == [
        ("make demo", 3),
        (".venv/bin/osbatch search 'gzip a file' --pipeline p", 5),
    ]
    assert commands[1].argv == [".venv/bin/osbatch", "search", "gzip a file", "--pipeline", "p"]
    assert hidden_commands(text) == []


def test_every_readme_command_is_covered_and_none_hides_outside_a_shell_block() -> None:
    # Given README.md's commands
    commands = readme_commands(README_TEXT)
    # Then each matches exactly one coverage entry, and no command line sits in a non-shell block
    uncovered = [f"README.md:{c.line}: {c.text}" for c in commands if coverage_of(c) is None]
    assert uncovered == []
    assert hidden_commands(README_TEXT) == []


def test_a_new_command_without_coverage_fails_the_check() -> None:
    # Given a README with one more command, in a shell block and in an unlabelled one
    text = (
        README_TEXT
        + "\n```bash\n.venv/bin/osbatch frobnicate --all   # new\n```\n```\nmake frobnicate\n```\n"
    )
    # When its commands are checked
    added = readme_commands(text)[-1]
    # Then the new one has no coverage, and the hidden one is found
    assert added == Command(".venv/bin/osbatch frobnicate --all", added.line)
    assert coverage_of(added) is None
    assert [command.text for command in hidden_commands(text)] == ["make frobnicate"]


@pytest.mark.parametrize("command", commands_covered_by(How.HERE), ids=lambda c: c.text)
def test_the_commands_that_need_no_runtime_run(
    command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the README's data file: twenty lines of the sample
    (tmp_path / DATA_FILE).write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:20]))
    monkeypatch.chdir(tmp_path)
    # When the command runs as written
    program, *arguments = command.argv
    assert program == ".venv/bin/osbatch"
    code = main(arguments)
    # Then it succeeds and prints something
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip()


def make_recipe(command: Command) -> list[str]:
    """What `make` would run for this command line (a dry run: `make -n` prints the recipe only)."""
    result = subprocess.run(
        ["make", "-n", *command.argv[1:]], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize("command", commands_covered_by(How.MAKE), ids=lambda c: c.text)
def test_the_make_targets_exist_and_run_valid_osbatch_commands(command: Command) -> None:
    # Given a README make command / When make dry-runs it
    recipe = make_recipe(command)
    # Then every osbatch command of its recipe is one the CLI accepts
    osbatch = [
        shlex.split(line.split("then ", 1)[-1].split(";")[0]) for line in recipe if "bin/osbatch" in line
    ]
    for argv in osbatch:
        build_parser().parse_args(argv[1:])
    target = command.argv[1]
    if target == "demo":
        # and the demo runs the backend the command names, one the demo knows
        backend = next(
            (arg.split("=", 1)[1] for arg in command.argv if arg.startswith("BACKEND=")), "sagemaker"
        )
        assert [".venv/bin/osbatch", "demo", "--backend", backend] in osbatch
        assert backend in DEMO_BACKENDS
    elif target == "down":
        assert [".venv/bin/osbatch", "down"] in osbatch
    elif target == "test":
        assert any(line.startswith(".venv/bin/pytest tests") for line in recipe)
    elif target == "install":
        # which the README's other make targets that need it run first
        makefile = (ROOT / "Makefile").read_text()
        for needs_install in ("demo", "test"):
            assert re.search(rf"^{needs_install}: install\b", makefile, re.MULTILINE), needs_install
    else:
        pytest.fail(f"README.md:{command.line}: no check for make target {target}")


@pytest.mark.parametrize(
    "command",
    [c for c in readme_commands(README_TEXT) if c.argv[0] == ".venv/bin/osbatch"],
    ids=lambda c: c.text,
)
def test_every_readme_osbatch_command_line_parses(command: Command) -> None:
    # Given a README osbatch command (those needing the runtime run in tests/integration)
    # When the CLI parses it / Then its command and options exist (argparse would exit 2 otherwise)
    args = build_parser().parse_args(command.argv[1:])
    assert args.command == command.argv[1]
