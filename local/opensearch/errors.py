"""Why the node cannot be installed or started. Each message names the missing piece and the fix."""

from __future__ import annotations


class SetupError(RuntimeError):
    """Something the local node needs is missing; the message says what and how to get it."""


class MissingMavenError(SetupError):
    pass


class MissingArtifactError(SetupError):
    pass


class MissingJavaError(SetupError):
    pass
