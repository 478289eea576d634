"""Creation order of a template's resources, from Ref, Fn::GetAtt, Fn::Sub references and DependsOn.

https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from local.aws.cfn_loader.intrinsics import TemplateError

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def references(node: Any) -> Iterator[str]:
    """Every name a node refers to through Ref, Fn::GetAtt or Fn::Sub (parameters included)."""
    if isinstance(node, list):
        for item in node:
            yield from references(item)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                target = value.split(".", 1)[0] if isinstance(value, str) else value[0]
                if isinstance(target, str):
                    yield target
            elif key == "Fn::Sub":
                template = value if isinstance(value, str) else value[0]
                local = {} if isinstance(value, str) else value[1]
                for expression in _SUB_VARIABLE.findall(template):
                    name = expression.strip().split(".", 1)[0]
                    if name not in local:
                        yield name
                if not isinstance(value, str):
                    yield from references(local)
            else:
                yield from references(value)


def dependencies(resources: Mapping[str, Any]) -> dict[str, set[str]]:
    """logical id -> the logical ids of the resources it needs first."""
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        needed = {name for name in references(resource.get("Properties", {})) if name in resources}
        depends_on = resource.get("DependsOn", [])
        for name in [depends_on] if isinstance(depends_on, str) else depends_on:
            if name not in resources:
                raise TemplateError(f"{logical_id} DependsOn {name}, which is not a resource")
            needed.add(name)
        needed.discard(logical_id)
        graph[logical_id] = needed
    return graph


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    """A topological order that keeps the template's own order wherever the dependencies allow."""
    pending = dependencies(resources)
    order: list[str] = []
    done: set[str] = set()
    while pending:
        ready = [logical_id for logical_id, needed in pending.items() if needed <= done]
        if not ready:
            raise TemplateError(f"circular dependency between resources: {', '.join(sorted(pending))}")
        for logical_id in ready:
            order.append(logical_id)
            done.add(logical_id)
            del pending[logical_id]
    return order
