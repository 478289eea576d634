"""README.md's `npx cdk deploy -c ...` synthesizes with its own context settings.

Deploying needs an AWS account, but `cdk deploy` starts by running app.py with the command's `-c` values as
context (CDK_CONTEXT_JSON, beside cdk.json's); that is run here, so a README context setting the app no
longer reads, or a value it refuses, fails this test (tests/readme_commands.py lists how every README command
is covered).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.helpers import CONTEXT, ROOT
from tests.readme_commands import Command, How, commands_covered_by


def context_of(command: Command) -> dict[str, str]:
    """The `-c key=value` settings of a cdk command line."""
    words = command.argv
    settings = [words[i + 1] for i, word in enumerate(words) if word in ("-c", "--context")]
    return dict(setting.split("=", 1) for setting in settings)


@pytest.mark.parametrize("command", commands_covered_by(How.SYNTH), ids=lambda c: c.text)
def test_the_readme_deploy_command_synthesizes_with_its_context(command: Command, tmp_path: Path) -> None:
    # Given the README's deploy command and its context settings
    settings = context_of(command)
    assert settings, "the README's deploy command sets context"
    # When app.py runs as `cdk deploy` runs it first, from the repository, with that context
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_CONTEXT_JSON": json.dumps({**CONTEXT, **settings}),
            "CDK_OUTDIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then it synthesizes the stack, and each setting shows in the template
    assert result.returncode == 0, result.stderr
    template = (tmp_path / "osbatch.template.json").read_text()
    if "alarm_emails" in settings:
        for email in settings["alarm_emails"].split(","):
            assert f'"Endpoint": "{email}"' in template or f'"Endpoint":"{email}"' in template
    if "pipelines" in settings:
        assert "python-docs" in template
