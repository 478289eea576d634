"""The clients the handlers build: the inference services' calls leave retrying to the workflow."""

from __future__ import annotations

import boto3

from osbatch.handlers.wiring import _client


def test_inference_clients_retry_once_and_the_others_keep_their_retries() -> None:
    # Given a session / When the handlers' clients are built
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    attempts = {
        name: _client(session, name).meta.config.retries["total_max_attempts"]
        for name in ("bedrock", "sagemaker", "s3", "dynamodb")
    }
    # Then a throttled submit fails fast (one call, one retry) into StartJob's Retry rule, which backs off
    # for retry_time_window, instead of sleeping through eight client-side retries; storage calls keep theirs
    assert attempts == {"bedrock": 2, "sagemaker": 2, "s3": 9, "dynamodb": 9}
