"""The CLI's exit codes, defined once: `osbatch --help` and README.md list them from here.

Standard library only: cli/main.py imports it before any command runs (tests/unit/test_cli_imports.py).
The aws CLI documents its codes the same way (AWS CLI User Guide, "Command line return codes",
docs.aws.amazon.com/cli/latest/userguide/cli-usage-returncodes.html).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # A job FAILED (`status <job>`), records were dead-lettered (`batch-ingest`, `replay`), or a piece of the
    # local runtime is down (`status`).
    FAILED = 1
    # argparse's own code for a bad command line; also a bad pipeline config or a request that cannot be done.
    USAGE = 2
    # Neither the local runtime nor AWS answered: no stack found, no region or credentials, no connection.
    UNREACHABLE = 3
    # `submit` uploaded a file but no job appeared for it; the message names the likely cause.
    NO_JOB = 4
    # Ctrl-C (128 + SIGINT), as shells report it.
    INTERRUPTED = 130


MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "a job failed, records were dead-lettered, or a local runtime piece is down",
    ExitCode.USAGE: "usage error: a bad command line, pipeline config or request",
    ExitCode.UNREACHABLE: "the local runtime or AWS could not be reached (no stack, region, credentials)",
    ExitCode.NO_JOB: "submit: an upload started no job (the message names the likely cause)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_codes_help() -> str:
    """The epilog of `osbatch --help`."""
    return "exit codes:\n" + "\n".join(f"  {int(code):<3}  {MEANINGS[code]}" for code in ExitCode)
