"""Custom resource: PUT each (path, JSON body) of the function's REQUESTS to its ENDPOINT, SigV4-signed,
"<indices>" in a body replaced by the function's INDICES (the list is in the environment once).

Deployed as inline code by infra/search_security.py and run on the Lambda runtime's own boto3, so it needs
no layer. The bodies come from the environment the stack set, never from the event: whoever may invoke the
function can only apply the stack's mapping again. Create and Update apply every request (each is an
idempotent PUT); Delete leaves the mappings, since the domain itself is retained. Any failure is reported
to CloudFormation with its reason.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

TIMEOUT_SECONDS = 30


def put(endpoint: str, path: str, body: str, region: str) -> int:
    """PUT body to endpoint + path, signed for the domain's service; the HTTP status, or an error."""
    request = AWSRequest(
        method="PUT", url=f"{endpoint}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign the request with")
    SigV4Auth(credentials, "es", region).add_auth(request)
    outgoing = urllib.request.Request(
        f"{endpoint}{path}", data=body.encode(), headers=dict(request.headers.items()), method="PUT"
    )
    try:
        with urllib.request.urlopen(outgoing, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"PUT {path}: HTTP {error.code}: {error.read()[:300]!r}") from None


def handler(event: dict[str, Any], context: Any) -> None:
    status, reason = "SUCCESS", "applied"
    try:
        if event["RequestType"] in ("Create", "Update"):
            for path, body in json.loads(os.environ["REQUESTS"]):
                text = json.dumps(body).replace('"<indices>"', os.environ["INDICES"])
                put(os.environ["ENDPOINT"], path, text, os.environ["AWS_REGION"])
    except Exception as error:  # CloudFormation must hear of every failure, or it waits an hour
        status, reason = "FAILED", f"{type(error).__name__}: {error}"[:900]
    respond(event, status, reason)


def respond(event: dict[str, Any], status: str, reason: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    # The presigned response URL expects no content type.
    request = urllib.request.Request(
        event["ResponseURL"], data=body, headers={"Content-Type": ""}, method="PUT"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
        pass
