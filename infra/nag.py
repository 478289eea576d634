"""cdk-nag acknowledgements that sit next to the grant that causes them.

cdk-nag 3 acknowledges each IAM5 finding by its exact id (`AwsSolutions-IAM5[Resource::<Bucket.Arn>/jobs/*]`);
there is no prefix matching. Writing those ids by hand would pin logical ids in strings, so `allow()` computes
them from the same tokens it grants, the way cdk-nag flattens them, and refuses a wildcard without a reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on scope and everything under it. The reason is the audit trail."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule_id} needs a written reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def flatten(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it in finding ids (port of flattenCfnReference)."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten(item) for item in items)
        if "Fn::Sub" in value:
            return flatten(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten(resource)}.{flatten(attribute)}>"
        if "Fn::ImportValue" in value:
            return flatten(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{flatten(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))


def wildcard_finding(scope: IConstruct, resource: str) -> str | None:
    """The IAM5 finding id a resource ARN (token or literal) produces, or None when it has no wildcard."""
    flat = flatten(Stack.of(scope).resolve(resource))
    return f"AwsSolutions-IAM5[Resource::{flat}]" if "*" in flat else None


def allow(
    grantee: iam.IGrantable,
    actions: Sequence[str],
    resources: Sequence[str],
    *,
    reason: str | None = None,
    conditions: Mapping[str, Any] | None = None,
    ack_scope: IConstruct | None = None,
) -> None:
    """Grant exact actions on resources; a wildcard resource is acknowledged on ack_scope with the reason."""
    if any("*" in action for action in actions):
        raise ValueError(f"name actions exactly (least privilege), not {list(actions)}")
    statement = iam.PolicyStatement(
        actions=list(actions), resources=list(resources), conditions=dict(conditions) if conditions else None
    )
    grantee.grant_principal.add_to_principal_policy(statement)
    scope = ack_scope or _scope_of(grantee)
    for resource in resources:
        finding = wildcard_finding(scope, resource)
        if finding is None:
            continue
        if reason is None:
            raise ValueError(
                f"{finding} on {scope.node.path} needs a reason: say why the wildcard is required"
            )
        acknowledge(scope, finding, reason)


def _scope_of(grantee: iam.IGrantable) -> IConstruct:
    for candidate in (grantee.grant_principal, grantee):
        if isinstance(candidate, Construct):
            return candidate
    raise TypeError("pass ack_scope when the grantee is not a construct")
