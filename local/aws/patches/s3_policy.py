"""Bucket policies: requests to the emulator count as HTTPS with TLS 1.3, as requests to S3 would.

moto 5.2.5 evaluates bucket policies on object requests but treats any Condition it cannot evaluate as
matching, so the SSL-only statements osbatch's buckets carry (`Deny` when `aws:SecureTransport` is false
or `s3:TlsVersion` < 1.2, https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html)
deny every request. Statements whose conditions only test those transport keys are evaluated here
against a TLS 1.3 request and dropped when they do not match; every other statement is left to moto.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

_REQUEST: dict[str, Any] = {"aws:securetransport": "true", "s3:tlsversion": 1.3}
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "NumericEquals": operator.eq,
    "NumericNotEquals": operator.ne,
    "NumericLessThan": operator.lt,
    "NumericLessThanEquals": operator.le,
    "NumericGreaterThan": operator.gt,
    "NumericGreaterThanEquals": operator.ge,
}


def transport_condition_matches(condition: dict[str, Any]) -> bool | None:
    """Whether a TLS 1.3 request matches `condition`; None if it tests anything but transport keys."""
    for test, pairs in condition.items():
        for key, expected in pairs.items():
            actual = _REQUEST.get(key.lower())
            values = expected if isinstance(expected, list) else [expected]
            if actual is None:
                return None
            if test == "Bool":
                matched = any(str(v).lower() == actual for v in values)
            elif test in _NUMERIC:
                matched = any(_NUMERIC[test](float(actual), float(v)) for v in values)
            else:
                return None
            if not matched:
                return False
    return True


def _applies(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    return not condition or transport_condition_matches(condition) is not False


def _get_permission(self: FakeBucket, action: str, resource: str) -> Any:
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy)
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    policy["Statement"] = [s for s in statements if _applies(s)]
    if not policy["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)


def install() -> None:
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
