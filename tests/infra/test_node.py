"""Synth runs on the Node.js release package.json pins, whatever `node` the machine has on PATH."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsii

from infra.jsii_node import PINNED_NODE, use_pinned_node
from tests.infra.helpers import Synth

ROOT = Path(__file__).resolve().parents[2]


def test_package_json_pins_a_supported_node_release() -> None:
    # Given package.json
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node"]
    # Then it names one exact release of a maintained line (22 is supported until 2027-04-30)
    assert pinned.split(".")[0] == "22" and pinned.count(".") == 2, pinned


def test_the_jsii_kernel_of_this_synth_runs_the_pinned_node(synth: Synth) -> None:
    # Given the stacks the infra suite synthesized in this process
    # When we look at the process jsii started for them (jsii keeps no public handle on it)
    process = jsii.kernel.provider._process._process  # type: ignore[attr-defined]
    executable = os.readlink(f"/proc/{process.pid}/exe")
    # Then it is the pinned Node from node_modules, and it reports the pinned version
    assert Path(executable).resolve() == PINNED_NODE.resolve()
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node"]
    assert version.strip() == f"v{pinned}"


def test_an_explicit_jsii_node_is_kept() -> None:
    # Given a user who chose their own Node for jsii
    environ = {"JSII_NODE": "/opt/node/bin/node"}
    # When the pinned one is applied / Then the user's choice wins
    use_pinned_node(environ)
    assert environ == {"JSII_NODE": "/opt/node/bin/node"}
