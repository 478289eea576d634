"""Runs checkov (in its own virtualenv, .venv-scanners) with its CloudFormation graph left unrendered.

checkov's variable renderer resolves every Ref and GetAtt edge by re-flattening the target resource, which
on a created domain's template (a domain policy with hundreds of role references) takes over a minute of CPU.
Rendering only substitutes parameter defaults and referenced attributes into the graph; on the four shapes
the suite scans it changed no check's result (measured: the same failed and passed checks, resource by
resource, with and without it), so it is skipped here. Arguments are checkov's own.
"""

from __future__ import annotations

import sys
from typing import Any

import checkov.cloudformation.graph_manager as graph_manager  # type: ignore[import-not-found]
from checkov.main import Checkov  # type: ignore[import-not-found]

_build = graph_manager.CloudformationGraphManager.build_graph_from_definitions


def _unrendered(self: Any, definitions: dict[str, Any], render_variables: bool = True) -> Any:
    return _build(self, definitions, render_variables=False)


graph_manager.CloudformationGraphManager.build_graph_from_definitions = _unrendered

if __name__ == "__main__":
    sys.exit(Checkov().run())
