"""Where the local runtime keeps its state. Everything lives under one git-ignored folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Node data, logs and pid files: `.osbatch/` in the repo unless OSBATCH_HOME says otherwise."""
    return Path(os.environ.get("OSBATCH_HOME", REPO_ROOT / ".osbatch"))


def cache_dir() -> Path:
    """Downloads that survive `make clean` and fresh clones: outside the repo."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "osbatch"
    return Path(os.environ.get("OSBATCH_CACHE", default))


def logs_dir(home: Path | None = None) -> Path:
    """The logs under `home`, or under state_dir() when none is given."""
    return (home or state_dir()) / "logs"


def run_dir(home: Path | None = None) -> Path:
    """The pid files under `home`, or under state_dir() when none is given."""
    return (home or state_dir()) / "run"
