"""Resource type -> handler that creates (or updates) it through boto3 against the emulator."""

from __future__ import annotations

from local.aws.cfn_loader.resources import (
    dynamodb,
    events,
    iam,
    lambda_,
    messaging,
    observability,
    s3,
    workflow,
)
from local.aws.cfn_loader.resources.base import Created, DeployContext, Handler

HANDLERS: dict[str, Handler] = {
    **s3.HANDLERS,
    **messaging.HANDLERS,
    **lambda_.HANDLERS,
    **events.HANDLERS,
    **dynamodb.HANDLERS,
    **iam.HANDLERS,
    **workflow.HANDLERS,
    **observability.HANDLERS,
}

__all__ = ["HANDLERS", "Created", "DeployContext", "Handler"]
