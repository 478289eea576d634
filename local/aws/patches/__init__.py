"""Runtime patches that turn moto 5.2.5 into the local AWS of osbatch. Installed once by the server."""

from __future__ import annotations

from local.aws.patches import eventbridge, lambda_invoke, s3_policy, sqs_poller, stepfunctions

_installed = False


def install(*, time_scale: float) -> None:
    global _installed
    if _installed:
        return
    lambda_invoke.install()
    eventbridge.install()
    s3_policy.install()
    stepfunctions.install(time_scale)
    sqs_poller.install(time_scale)
    _installed = True
