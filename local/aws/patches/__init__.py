"""Runtime patches that turn moto 5.2.5 into the local AWS of osbatch. Installed once by the server."""

from __future__ import annotations

from local.aws.patches import (
    cloudformation,
    eventbridge,
    execution_events,
    lambda_invoke,
    s3_notifications,
    service_metrics,
    sqs_poller,
    stepfunctions,
)

_installed = False


def install(*, endpoint_url: str, time_scale: float) -> None:
    global _installed
    if _installed:
        return
    lambda_invoke.install(endpoint_url)
    cloudformation.install()
    eventbridge.install()
    s3_notifications.install()
    stepfunctions.install(time_scale)
    execution_events.install()
    sqs_poller.install(time_scale)
    service_metrics.install()
    _installed = True
