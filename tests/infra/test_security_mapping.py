"""Fine-grained access control on a created domain: the role-mapping custom resource and its handler."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks

from infra import security_mapping_handler
from infra.stack import OsbatchStack
from osbatch.config import ConfigError
from tests.infra.helpers import CREATED, Synthesized, new_app, pipeline, role_id, statements_of_role

FGAC = {"sink": {"opensearch": {**CREATED["sink"]["opensearch"], "fine_grained_access_control": True}}}

REQUESTS = [
    [
        "/_plugins/_security/api/roles/osbatch-bulk",
        json.dumps({"cluster_permissions": ["indices:data/write/bulk"]}),
    ],
    [
        "/_plugins/_security/api/rolesmapping/osbatch-bulk",
        json.dumps({"backend_roles": ["arn:aws:iam::1:role/r"]}),
    ],
]


class Recorder(HTTPServer):
    """A local stand-in for both the domain and CloudFormation's response URL: it records every PUT."""

    def __init__(self, domain_status: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.domain_status = domain_status
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        status = 200 if self.path.startswith("/response") else self.server.domain_status
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    server = Recorder(getattr(request, "param", 200))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def event(server: Recorder, request_type: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": f"{server.url}/response",
        "StackId": "arn:aws:cloudformation:eu-west-1:1:stack/s/uuid",
        "RequestId": "request-1",
        "LogicalResourceId": "Mapping",
        "ResourceProperties": {"Endpoint": server.url, "Region": "eu-west-1", "Requests": REQUESTS},
    }


def _response(server: Recorder) -> dict[str, Any]:
    (response,) = [json.loads(body) for path, _, body in server.received if path == "/response"]
    return response


def test_create_puts_every_body_signed_for_the_domains_region(recorder: Recorder) -> None:
    # Given a Create request with a role and its mapping
    # When the handler runs
    security_mapping_handler.handler(event(recorder, "Create"), None)

    # Then each body was PUT to its path, SigV4-signed for es in the domain's region
    puts = [(path, headers, body) for path, headers, body in recorder.received if path != "/response"]
    assert [(path, body.decode()) for path, _, body in puts] == [tuple(r) for r in REQUESTS]
    for _, headers, _ in puts:
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/es/aws4_request" in headers["Authorization"]
    # And CloudFormation was told it succeeded
    response = _response(recorder)
    assert (response["Status"], response["RequestId"], response["PhysicalResourceId"]) == (
        "SUCCESS",
        "request-1",
        "Mapping",
    )


@pytest.mark.parametrize("recorder", [403], indirect=True)
def test_a_refused_put_fails_the_resource_with_the_status(recorder: Recorder) -> None:
    # Given a domain that refuses the request (the role is not the master user, say)
    # When the handler runs
    security_mapping_handler.handler(event(recorder, "Update"), None)

    # Then CloudFormation hears FAILED with the path and status, instead of waiting an hour
    response = _response(recorder)
    assert response["Status"] == "FAILED"
    assert "PUT /_plugins/_security/api/roles/osbatch-bulk: HTTP 403" in response["Reason"]


def test_delete_leaves_the_retained_domains_mappings(recorder: Recorder) -> None:
    # Given a Delete request (the domain itself is retained)
    security_mapping_handler.handler(event(recorder, "Delete"), None)
    # Then nothing was sent to the domain, and CloudFormation was told it succeeded
    assert [path for path, _, _ in recorder.received] == ["/response"]
    assert _response(recorder)["Status"] == "SUCCESS"


@pytest.fixture(scope="module")
def secured() -> Synthesized:
    # Given a created domain with fine-grained access control
    stack = OsbatchStack(new_app(), "secured", pipelines=[pipeline(**FGAC)])
    return Synthesized.of(stack)


def test_the_domains_master_user_is_the_mapping_functions_role(secured: Synthesized) -> None:
    # Given the domain and the custom resource's function
    (domain,) = secured.of_type("AWS::OpenSearchService::Domain").values()
    (function,) = [
        f
        for f in secured.of_type("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "index.handler"
    ]
    options = domain["Properties"]["AdvancedSecurityOptions"]

    # Then fine-grained access control is on, with IAM (not an internal user) as master, that role
    assert options["Enabled"] is True and options["InternalUserDatabaseEnabled"] is False
    assert options["MasterUserOptions"]["MasterUserARN"] == function["Properties"]["Role"]
    # And the function runs the handler inline (under CloudFormation's 4096-character limit)
    code = function["Properties"]["Code"]["ZipFile"]
    assert code == Path(security_mapping_handler.__file__).read_text() and len(code) < 4096


def test_the_mapping_gives_each_function_its_opensearch_role(secured: Synthesized) -> None:
    # Given the custom resource's requests
    (mapping,) = secured.of_type("Custom::OpenSearchRoleMapping").values()
    requests = {path: body for path, body in mapping["Properties"]["Requests"]}

    def body(path: str) -> dict[str, Any]:
        return dict(json.loads(requests[f"/_plugins/_security/api/{path}"]))

    # Then prepare and plan-ingest may create and check the pipeline's index, and nothing more
    assert body("roles/osbatch-index") == {
        "index_permissions": [
            {
                "index_patterns": ["python-docs"],
                "allowed_actions": [
                    "indices:admin/create",
                    "indices:admin/get",
                    "indices:admin/mappings/get",
                ],
            }
        ]
    }
    # And ingest-chunk may bulk into it
    bulk = body("roles/osbatch-bulk")
    assert bulk["cluster_permissions"] == ["indices:data/write/bulk"]
    assert bulk["index_permissions"][0]["index_patterns"] == ["python-docs"]
    # And plan-ingest, finalize and fail-job may read and set its settings, count and refresh it
    assert body("roles/osbatch-load") == {
        "index_permissions": [
            {
                "index_patterns": ["python-docs"],
                "allowed_actions": [
                    "indices:monitor/settings/get",
                    "indices:admin/settings/update",
                    "indices:data/read/search",
                    "indices:admin/refresh*",
                ],
            }
        ]
    }
    # And each role maps exactly its functions' IAM roles as backend roles
    text = json.dumps(mapping["Properties"]["Requests"])
    for role_path, functions in (
        ("osbatch-index", ("prepare", "plan-ingest")),
        ("osbatch-bulk", ("ingest-chunk",)),
        ("osbatch-load", ("plan-ingest", "finalize", "fail-job")),
    ):
        mapped = requests[f"/_plugins/_security/api/rolesmapping/{role_path}"]
        assert all(role_id(secured, name) in json.dumps(mapped) for name in functions), role_path
        others = {"prepare", "plan-ingest", "ingest-chunk", "finalize", "fail-job"} - set(functions)
        assert not any(role_id(secured, name) in json.dumps(mapped) for name in others), role_path
        assert role_id(secured, "submit") not in text


def test_the_master_role_may_only_put_those_six_security_paths(secured: Synthesized) -> None:
    # Given the domain policy's statement for the master role, and its IAM grant
    (domain,) = secured.of_type("AWS::OpenSearchService::Domain").values()
    master = domain["Properties"]["AdvancedSecurityOptions"]["MasterUserOptions"]["MasterUserARN"][
        "Fn::GetAtt"
    ][0]
    (statement,) = [
        s
        for s in domain["Properties"]["AccessPolicies"]["Statement"]
        if isinstance(s["Principal"]["AWS"], dict) and s["Principal"]["AWS"]["Fn::GetAtt"][0] == master
    ]
    expected = [
        "/_plugins/_security/api/roles/osbatch-index",
        "/_plugins/_security/api/rolesmapping/osbatch-index",
        "/_plugins/_security/api/roles/osbatch-bulk",
        "/_plugins/_security/api/rolesmapping/osbatch-bulk",
        "/_plugins/_security/api/roles/osbatch-load",
        "/_plugins/_security/api/rolesmapping/osbatch-load",
    ]
    # Then both name exactly the role and mapping paths, and only PUT
    assert statement["Action"] == "es:ESHttpPut"
    assert [r["Fn::Join"][1][-1] for r in statement["Resource"]] == expected
    es = [s for s in statements_of_role(secured, master) if s["Action"] == "es:ESHttpPut"]
    assert [sorted(r["Fn::Join"][1][-1] for r in s["Resource"]) for s in es] == [sorted(expected)]


def test_a_secured_stack_passes_cdk_nag(secured: Synthesized) -> None:
    # When the AwsSolutions pack runs over the stack with the custom resource
    report = AwsSolutionsChecks(verbose=True).validate_scope(secured.stack)
    # Then nothing is left to fix or acknowledge
    assert report.success, [v.rule_name for v in report.violations]


def test_fine_grained_access_control_is_for_created_domains() -> None:
    # Given an existing domain with the flag
    endpoint = "https://search-logs-abc123.us-east-1.es.amazonaws.com"
    # When the config is loaded / Then it is refused, pointing to what to do instead
    with pytest.raises(ConfigError, match="applies to a created domain"):
        pipeline(sink={"opensearch": {"endpoint": endpoint, "fine_grained_access_control": True}})
