"""The Node.js that runs CDK's jsii kernel: the release package.json pins, not whatever `node` is on PATH.

The machine's Node may be end-of-life (jsii then prints a banner on every synth, and a later release may
refuse it). jsii starts its kernel with $JSII_NODE, so this must run before aws_cdk is first imported.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PINNED_NODE = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "node"


def use_pinned_node(environ: MutableMapping[str, str] = os.environ) -> None:
    """Point jsii at the pinned Node once `make install` (npm ci) has installed it; an explicit
    JSII_NODE wins."""
    if "JSII_NODE" not in environ and PINNED_NODE.is_file():
        environ["JSII_NODE"] = str(PINNED_NODE)
