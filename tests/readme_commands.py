"""The shell commands of README.md, and which test runs each, so that none of them can rot unnoticed.

A command is one line of a ```bash (sh, shell, console) block, its `# comment` removed. Each must match one
entry of COVERAGE, which says how it is covered:
- HERE: tests/unit/test_readme_commands.py runs it for real (no runtime needed);
- MAKE: a Makefile target; the unit test dry-runs it (`make -n`) and checks the osbatch command it runs;
- RUNTIME: tests/integration/test_readme_by_hand_path.py runs it for real on the local runtime, in order;
- SYNTH: `cdk deploy` needs an AWS account; tests/infra/test_readme_deploy.py runs app.py with the command's
  own `-c` context, the synth `cdk deploy` starts with;
- AWS_ONLY: acts on an AWS account and nothing else; the entry names why nothing here can run it.
A README command that matches no entry fails tests/unit/test_readme_commands.py.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
FENCE = re.compile(r"^```(\S*)\s*$")
# The first words of a command line; such a line in a block of another language is a command hidden from
# this check, so it fails the test too.
COMMAND_START = re.compile(r"^(\$ )?(\.venv/bin/osbatch|osbatch|make|npx|cdk|aws|pip|python3?)( |$)")
# README placeholders and the files its commands write, as the tests fill them in.
DATA_FILE = "data.jsonl"
JOB_ID = "<job-id>"


class How(StrEnum):
    HERE = "run by tests/unit/test_readme_commands.py"
    MAKE = "a Makefile target, dry-run by tests/unit/test_readme_commands.py"
    RUNTIME = "run by tests/integration/test_readme_by_hand_path.py on the local runtime"
    SYNTH = "synthesized with its own context by tests/infra/test_readme_deploy.py"
    AWS_ONLY = "acts on an AWS account only"


@dataclass(frozen=True)
class Coverage:
    pattern: str  # a regular expression the whole command matches
    how: How
    note: str = ""


OSBATCH = r"\.venv/bin/osbatch"
COVERAGE = (
    Coverage(r"make install", How.MAKE, "every make target of the README runs it first"),
    Coverage(r"make demo( BACKEND=[a-z-]+)?", How.MAKE, "runs `osbatch demo --backend <BACKEND>`"),
    Coverage(r"make test", How.MAKE, "runs lint and `pytest tests`"),
    Coverage(r"make down", How.MAKE, "runs `osbatch down`, which every integration run ends with"),
    Coverage(rf"{OSBATCH} plan \S+ --pipeline \S+", How.HERE),
    Coverage(rf"{OSBATCH} (up|deploy --local)", How.RUNTIME),
    Coverage(rf"{OSBATCH} (submit|watch|status|search|report|dashboard)( .*)?", How.RUNTIME),
    Coverage(r"npx cdk deploy( -c \S+)*", How.SYNTH),
    Coverage(
        r"npx cdk bootstrap",
        How.AWS_ONLY,
        "creates the CDK toolkit stack in an account and region; it runs no osbatch code",
    ),
)


@dataclass(frozen=True)
class Command:
    text: str  # as written, without its comment
    line: int  # in README.md

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


def _blocks(text: str) -> list[tuple[str, list[tuple[int, str]]]]:
    blocks: list[tuple[str, list[tuple[int, str]]]] = []
    language: str | None = None
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and language is None:
            language, lines = fence.group(1).lower(), []
        elif line.startswith("```") and language is not None:
            blocks.append((language, lines))
            language = None
        elif language is not None:
            lines.append((number, line))
    return blocks


def readme_commands(text: str) -> list[Command]:
    """Every command of the shell blocks, in order."""
    commands = []
    for language, lines in _blocks(text):
        if language not in SHELL_LANGUAGES:
            continue
        for number, line in lines:
            words = shlex.split(line, comments=True)
            if words:
                commands.append(Command(shlex.join(words), number))
    return commands


def hidden_commands(text: str) -> list[Command]:
    """Command lines in blocks of another language (or none), which readme_commands would not see."""
    return [
        Command(line.strip(), number)
        for language, lines in _blocks(text)
        if language not in SHELL_LANGUAGES
        for number, line in lines
        if COMMAND_START.match(line.strip())
    ]


def coverage_of(command: Command) -> Coverage | None:
    matches = [entry for entry in COVERAGE if re.fullmatch(entry.pattern, command.text)]
    return matches[0] if len(matches) == 1 else None


def commands_covered_by(how: How, text: str | None = None) -> list[Command]:
    commands = readme_commands(README.read_text(encoding="utf-8") if text is None else text)
    return [command for command in commands if (entry := coverage_of(command)) and entry.how is how]
