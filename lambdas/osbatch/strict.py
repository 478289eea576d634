"""The base of every config model: unknown keys are errors, and a validated config never changes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # A typo in a config must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)
