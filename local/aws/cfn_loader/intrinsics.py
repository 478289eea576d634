"""CloudFormation intrinsic functions, conditions and pseudo parameters, resolved without any AWS call.

https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
Resource references go through a `References` object, so the resolver is testable with plain dicts.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol


class TemplateError(ValueError):
    """The template uses something this loader cannot resolve. The message names the construct."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class References(Protocol):
    """Ref and Fn::GetAtt on resources, answered by the deployer from what it has created so far."""

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


def pseudo_parameters(*, account_id: str, region: str, stack_name: str, stack_id: str) -> dict[str, Any]:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
    return {
        "AWS::AccountId": account_id,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
        "AWS::StackId": stack_id,
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }


class Resolver:
    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        references: References,
    ) -> None:
        self.parameters = {**pseudo, **parameters}
        self.mappings: Mapping[str, Any] = template.get("Mappings", {})
        self.condition_definitions: Mapping[str, Any] = template.get("Conditions", {})
        self.references = references
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    # -- conditions ---------------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self.condition_definitions:
            raise TemplateError(f"condition '{name}' is not defined in Conditions")
        if name in self._evaluating:
            raise TemplateError(f"condition '{name}' refers to itself")
        self._evaluating.add(name)
        try:
            value = self._truth(self.condition_definitions[name])
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = value
        return value

    def _truth(self, node: Any) -> bool:
        if isinstance(node, Mapping) and set(node) == {"Condition"}:
            return self.condition(node["Condition"])
        value = self.resolve(node)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TemplateError(f"a condition must be a boolean, got {value!r}")

    # -- values -------------------------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, Mapping):
            return node
        if len(node) == 1:
            key, argument = next(iter(node.items()))
            if key == "Ref":
                return self._ref(argument)
            if key.startswith("Fn::"):
                function = _FUNCTIONS.get(key)
                if function is None:
                    raise TemplateError(f"{key} is not supported by the local loader")
                return function(self, argument)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _ref(self, name: Any) -> Any:
        name = self.resolve(name)
        if name in self.parameters:
            return self.parameters[name]
        return self.references.ref(name)

    def _variable(self, expression: str, local: Mapping[str, Any]) -> Any:
        if expression in local:
            return local[expression]
        if expression in self.parameters:
            return self.parameters[expression]
        if "." in expression:
            logical_id, attribute = expression.split(".", 1)
            return self.references.get_att(logical_id, attribute)
        return self.references.ref(expression)


def _list_argument(function: str, argument: Any, length: int) -> list[Any]:
    if not isinstance(argument, list) or len(argument) != length:
        raise TemplateError(f"{function} takes a list of {length} arguments, got {argument!r}")
    return argument


def _join(resolver: Resolver, argument: Any) -> str:
    delimiter, values = _list_argument("Fn::Join", argument, 2)
    items = resolver.resolve(values)
    if not isinstance(items, list):
        raise TemplateError(f"Fn::Join needs a list, got {items!r}")
    return str(delimiter).join(_text(item) for item in items)


def _sub(resolver: Resolver, argument: Any) -> str:
    if isinstance(argument, str):
        template, local = argument, {}
    else:
        template, variables = _list_argument("Fn::Sub", argument, 2)
        local = resolver.resolve(variables)

    def replace(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
            return "${" + expression[1:] + "}"
        return _text(resolver._variable(expression.strip(), local))

    return _SUB_VARIABLE.sub(replace, template)


def _get_att(resolver: Resolver, argument: Any) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    logical_id, attribute = _list_argument("Fn::GetAtt", argument, 2)
    return resolver.references.get_att(logical_id, resolver.resolve(attribute))


def _select(resolver: Resolver, argument: Any) -> Any:
    index, values = _list_argument("Fn::Select", argument, 2)
    items = resolver.resolve(values)
    position = int(resolver.resolve(index))
    if not isinstance(items, list) or not 0 <= position < len(items):
        raise TemplateError(f"Fn::Select index {position} is out of range for {items!r}")
    return items[position]


def _split(resolver: Resolver, argument: Any) -> list[str]:
    delimiter, source = _list_argument("Fn::Split", argument, 2)
    return _text(resolver.resolve(source)).split(delimiter)


def _if(resolver: Resolver, argument: Any) -> Any:
    name, when_true, when_false = _list_argument("Fn::If", argument, 3)
    return resolver.resolve(when_true if resolver.condition(name) else when_false)


def _equals(resolver: Resolver, argument: Any) -> bool:
    left, right = (resolver.resolve(v) for v in _list_argument("Fn::Equals", argument, 2))
    return bool(_text(left) == _text(right))


def _not(resolver: Resolver, argument: Any) -> bool:
    (operand,) = _list_argument("Fn::Not", argument, 1)
    return not resolver._truth(operand)


def _and(resolver: Resolver, argument: Any) -> bool:
    return all(resolver._truth(operand) for operand in argument)


def _or(resolver: Resolver, argument: Any) -> bool:
    return any(resolver._truth(operand) for operand in argument)


def _find_in_map(resolver: Resolver, argument: Any) -> Any:
    if not isinstance(argument, list) or len(argument) not in (3, 4):
        raise TemplateError(f"Fn::FindInMap takes 3 arguments, got {argument!r}")
    name, top, second = (resolver.resolve(v) for v in argument[:3])
    try:
        return resolver.mappings[name][top][second]
    except KeyError:
        if len(argument) == 4 and isinstance(argument[3], Mapping) and "DefaultValue" in argument[3]:
            return resolver.resolve(argument[3]["DefaultValue"])
        raise TemplateError(f"Fn::FindInMap: {name}/{top}/{second} is not in Mappings") from None


def _base64(resolver: Resolver, argument: Any) -> str:
    return base64.b64encode(_text(resolver.resolve(argument)).encode("utf-8")).decode("ascii")


def _get_azs(resolver: Resolver, argument: Any) -> list[str]:
    region = resolver.resolve(argument) or resolver.parameters["AWS::Region"]
    return [f"{region}{zone}" for zone in "abc"]


def _to_json_string(resolver: Resolver, argument: Any) -> str:
    return json.dumps(resolver.resolve(argument), separators=(",", ":"))


def _length(resolver: Resolver, argument: Any) -> int:
    return len(resolver.resolve(argument))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise TemplateError(f"expected a string, got {value!r}")
    return str(value)


_FUNCTIONS = {
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::GetAtt": _get_att,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": _base64,
    "Fn::GetAZs": _get_azs,
    "Fn::ToJsonString": _to_json_string,
    "Fn::Length": _length,
}
