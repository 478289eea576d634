"""What a local deployment produced: logical id -> physical id and attributes, and the stack's Outputs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local.paths import state_dir


@dataclass(frozen=True)
class StackResource:
    type: str
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployedStack:
    stack_name: str
    region: str
    account_id: str
    endpoint_url: str
    resources: dict[str, StackResource] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> resource type

    @property
    def physical_ids(self) -> dict[str, str]:
        return {logical_id: resource.physical_id for logical_id, resource in self.resources.items()}

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id].physical_id

    def of_type(self, resource_type: str) -> dict[str, StackResource]:
        return {k: r for k, r in self.resources.items() if r.type == resource_type}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> DeployedStack:
        data = json.loads(text)
        resources = {k: StackResource(**v) for k, v in data.pop("resources", {}).items()}
        return cls(resources=resources, **data)

    def save(self, path: Path | None = None) -> Path:
        target = path or stack_path(self.stack_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json())
        return target


def stack_path(stack_name: str) -> Path:
    return state_dir() / "stacks" / f"{stack_name}.json"


def load_stack(stack_name: str) -> DeployedStack | None:
    path = stack_path(stack_name)
    return DeployedStack.from_json(path.read_text()) if path.exists() else None
