"""Tags on every taggable resource: the stack's name, each pipeline's name on its own resources, and
whatever tags the account requires (context `tags`, e.g. `-c 'tags={"cost-center": "search"}'`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack, Tags

from osbatch.infra_facts import ConfigError

STACK_TAG = "osbatch:stack"
PIPELINE_TAG = "osbatch:pipeline"  # on the resources one pipeline owns (its EventBridge rule)
TAGS_CONTEXT = "tags"


def tag_stack(stack: Stack, extra: Mapping[str, str]) -> None:
    """Tags.of applies to every taggable resource under the stack, those made by libraries included."""
    Tags.of(stack).add(STACK_TAG, stack.stack_name)
    for key, value in extra.items():
        Tags.of(stack).add(key, value)


def tags_from_context(raw: Any) -> dict[str, str]:
    """A JSON object (a string from `-c`, or an object in cdk.json) of string keys and values."""
    if raw is None or raw == "":
        return {}
    try:
        tags = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ConfigError(f"context {TAGS_CONTEXT}: not a JSON object: {raw!r}") from None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in [*tags, *tags.values()]):
        raise ConfigError(
            f"context {TAGS_CONTEXT}: expected an object of string keys and values, got {raw!r}"
        )
    reserved = [key for key in tags if key.lower().startswith("aws:")]
    if reserved:
        raise ConfigError(f"context {TAGS_CONTEXT}: keys starting with 'aws:' are AWS's own: {reserved}")
    return dict(tags)
