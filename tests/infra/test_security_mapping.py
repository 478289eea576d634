"""Fine-grained access control on a created domain: the role-mapping custom resource and its handler."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from infra import security_mapping_handler
from infra.search_security import ML_PROVISION_ACTIONS, ROLE_ORDER, SecurityMapping, mapping_function_name
from infra.stack import OsbatchStack
from osbatch.config import ConfigError
from tests.infra.helpers import (
    BATCH,
    CREATED,
    Synthesized,
    new_app,
    pipeline,
    role_id,
    statements_of_role,
)

FGAC = {"sink": {"opensearch": {**CREATED["sink"]["opensearch"], "fine_grained_access_control": True}}}

BULK_ROLE = {
    "cluster_permissions": ["indices:data/write/bulk"],
    "index_permissions": [{"index_patterns": "<indices>"}],
}
REQUESTS = [
    ["/_plugins/_security/api/roles/osbatch-bulk", BULK_ROLE],
    ["/_plugins/_security/api/rolesmapping/osbatch-bulk", {"backend_roles": ["arn:aws:iam::1:role/r"]}],
]
INDICES = ["docs", "logs"]
# What an invoker might try to have the master user apply: an admin role mapped to its own role.
FORGED = [["/_plugins/_security/api/rolesmapping/all_access", {"backend_roles": ["arn:aws:iam::1:role/me"]}]]


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
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    server = Recorder(getattr(request, "param", 200))
    # The function's environment, as infra/search_security.py sets it
    monkeypatch.setenv("ENDPOINT", server.url)
    monkeypatch.setenv("REQUESTS", json.dumps(REQUESTS))
    monkeypatch.setenv("INDICES", json.dumps(INDICES))
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
        # An invoker controls the event: whatever it carries is never applied
        "ResourceProperties": {"Endpoint": "https://elsewhere.example", "Requests": FORGED, "Mapping": "x"},
    }


def _response(server: Recorder) -> dict[str, Any]:
    (response,) = [json.loads(body) for path, _, body in server.received if path == "/response"]
    return response


def test_create_puts_every_body_signed_for_the_domains_region(recorder: Recorder) -> None:
    # Given a function whose environment holds a role and its mapping, and a Create request whose
    # properties name other requests and another endpoint
    # When the handler runs
    security_mapping_handler.handler(event(recorder, "Create"), None)

    # Then each body of the environment, and only those, was PUT to its path on the environment's endpoint,
    # SigV4-signed for es in the domain's region
    puts = [(path, headers, body) for path, headers, body in recorder.received if path != "/response"]
    # (the role's index patterns are the environment's INDICES)
    role = {**BULK_ROLE, "index_permissions": [{"index_patterns": INDICES}]}
    assert [(path, json.loads(body)) for path, _, body in puts] == [
        (REQUESTS[0][0], role),
        tuple(REQUESTS[1]),
    ]
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


def _mapping_function(secured: Synthesized) -> dict[str, Any]:
    (function,) = [
        f
        for f in secured.of_type("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "index.handler"
    ]
    return function


def _requests(secured: Synthesized) -> list[Any]:
    """The function's REQUESTS with its INDICES in place, as the handler PUTs them, its ARN tokens left as
    CloudFormation objects."""
    variables = _mapping_function(secured)["Properties"]["Environment"]["Variables"]
    value = variables["REQUESTS"]
    text = "".join(p if isinstance(p, str) else json.dumps(json.dumps(p))[1:-1] for p in value["Fn::Join"][1])
    return list(json.loads(text.replace('"<indices>"', variables["INDICES"])))


def test_the_mapping_gives_each_function_its_opensearch_role(secured: Synthesized) -> None:
    # Given the role-mapping function's requests (its environment: never the invoking event)
    requests = {path: body for path, body in _requests(secured)}
    (mapping,) = secured.of_type("Custom::OpenSearchRoleMapping").values()

    def body(path: str) -> dict[str, Any]:
        return dict(requests[f"/_plugins/_security/api/{path}"])

    # Then prepare and plan-ingest may create and check the pipeline's index, and (prepare's incremental
    # re-embedding) put osbatch's fields in its mapping, read fingerprints and update unchanged documents
    assert body("roles/osbatch-index") == {
        "cluster_permissions": ["indices:data/write/bulk", "indices:data/read/mget"],
        "index_permissions": [
            {
                "index_patterns": ["python-docs"],
                "allowed_actions": [
                    "indices:admin/create",
                    "indices:admin/get",
                    "indices:admin/mappings/get",
                    "indices:admin/mapping/put",
                    "indices:data/read/mget*",
                    "indices:data/write/bulk*",
                    "indices:data/write/update",
                    "indices:data/read/search*",
                ],
            }
        ],
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
                    "indices:data/write/delete/byquery",
                    "indices:data/write/delete",
                ],
            }
        ]
    }
    # And provision-search may make the ML Commons and search-pipeline calls of provisioning, by name
    assert body("roles/osbatch-ml-provision") == {"cluster_permissions": ML_PROVISION_ACTIONS}
    assert all(
        action.startswith(("cluster:admin/opensearch/ml/", "cluster:admin/search/pipeline/"))
        for action in ML_PROVISION_ACTIONS
    )
    # And each role maps exactly its functions' IAM roles as backend roles
    text = json.dumps(_requests(secured))
    for role_path, functions in (
        ("osbatch-index", ("prepare", "plan-ingest", "provision-search")),
        ("osbatch-bulk", ("ingest-chunk",)),
        ("osbatch-load", ("plan-ingest", "finalize", "fail-job")),
        ("osbatch-ml-provision", ("provision-search",)),
    ):
        mapped = json.dumps(requests[f"/_plugins/_security/api/rolesmapping/{role_path}"])
        assert all(role_id(secured, name) in mapped for name in functions), role_path
        others = {"prepare", "plan-ingest", "ingest-chunk", "finalize", "fail-job", "provision-search"}
        assert not any(role_id(secured, name) in mapped for name in others - set(functions)), role_path
        assert role_id(secured, "submit") not in text
    # And the resource carries the same mapping, so a change to it is an Update that applies it again
    variables = _mapping_function(secured)["Properties"]["Environment"]["Variables"]
    assert mapping["Properties"] == {
        "ServiceToken": mapping["Properties"]["ServiceToken"],
        "Mapping": variables["REQUESTS"],
        "Indices": variables["INDICES"],
    }
    # And provisioning waits for the mapping, or the security plugin would refuse its first call
    (mapping_id,) = secured.of_type("Custom::OpenSearchRoleMapping")
    for search in secured.of_type("Custom::OsbatchSearch").values():
        assert mapping_id in search["DependsOn"]


def test_the_ml_commons_callers_get_the_least_ml_commons_actions() -> None:
    # Given an ml-commons pipeline on a created domain with fine-grained access control
    config = pipeline(**{**BATCH, **FGAC})
    stack = OsbatchStack(new_app(), "secured-batch", pipelines=[config])
    synth = Synthesized.of(stack)
    requests = {path: body for path, body in _requests(synth)}
    api = "/_plugins/_security/api"

    # Then start-job may find the model, batch-predict and find its tasks; poll-job and fail-job may read
    # and cancel a task; nothing else of ML Commons
    assert requests[f"{api}/roles/osbatch-ml-submit"] == {
        "cluster_permissions": [
            "cluster:admin/opensearch/ml/models/search",
            "cluster:admin/opensearch/ml/predict",
            "cluster:admin/opensearch/ml/tasks/search",
        ]
    }
    assert requests[f"{api}/roles/osbatch-ml-poll"] == {
        "cluster_permissions": [
            "cluster:admin/opensearch/ml/tasks/get",
            "cluster:admin/opensearch/ml/tasks/cancel",
        ]
    }
    # And each maps exactly those functions' roles
    for role, functions in (
        ("osbatch-ml-submit", ("start-job",)),
        ("osbatch-ml-poll", ("poll-job", "fail-job")),
    ):
        mapped = json.dumps(requests[f"{api}/rolesmapping/{role}"])
        assert sorted(
            name for name in ("start-job", "poll-job", "fail-job") if role_id(synth, name) in mapped
        ) == sorted(functions), role


def test_the_master_role_trusts_lambda_as_an_execution_role_and_the_function_has_a_fixed_name(
    secured: Synthesized,
) -> None:
    # Given the master role's trust and the function's name
    function = _mapping_function(secured)
    master = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (trust,) = secured.resources[master]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    # Then the trust is the one Lambda documents for execution roles, with no condition Lambda might not send
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "Condition" not in trust
    assert function["Properties"]["FunctionName"] == "secured-fgac-role-mapping"


def test_a_long_stack_name_still_names_a_valid_function() -> None:
    # Given a stack name as long as CloudFormation allows
    name = mapping_function_name("s" * 128)
    # Then the function name fits Lambda's 64 characters and keeps the suffix
    assert len(name) <= 64 and name.endswith("-fgac-role-mapping")
    assert mapping_function_name("osbatch") == "osbatch-fgac-role-mapping"


def test_the_master_role_may_only_put_the_security_paths_of_its_roles(secured: Synthesized) -> None:
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
        f"/_plugins/_security/api/{kind}/{role}"
        for role in ("osbatch-index", "osbatch-bulk", "osbatch-load", "osbatch-ml-provision")
        for kind in ("roles", "rolesmapping")
    ]
    # Then both name exactly the role and mapping paths of the roles it writes, and only PUT
    assert statement["Action"] == "es:ESHttpPut"
    assert [r["Fn::Join"][1][-1] for r in statement["Resource"]] == expected
    es = [s for s in statements_of_role(secured, master) if s["Action"] == "es:ESHttpPut"]
    assert [sorted(r["Fn::Join"][1][-1] for r in s["Resource"]) for s in es] == [sorted(expected)]


def test_a_fine_grained_domain_publishes_audit_logs(secured: Synthesized) -> None:
    # Given the created domain with fine-grained access control
    (domain,) = secured.of_type("AWS::OpenSearchService::Domain").values()
    audit = domain["Properties"]["LogPublishingOptions"]["AUDIT_LOGS"]
    # Then its audit logs go to a log group of the stack, which the domain may write (for itself only)
    assert audit["Enabled"] is True
    group = audit["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0]
    assert secured.resources[group]["Type"] == "AWS::Logs::LogGroup"
    (policy,) = secured.of_type("AWS::Logs::ResourcePolicy").values()
    assert group in json.dumps(policy["Properties"]["PolicyDocument"])


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


def test_a_mapping_that_would_outgrow_the_functions_environment_fails_synth() -> None:
    # Given a mapping of every role, as a stack with all backends has it, over 120 indices
    stack = cdk.Stack(new_app(), "crowded")
    mapping = SecurityMapping(stack, "Security")
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    indices = [f"pipeline-index-{i:04d}" for i in range(120)]
    members = {name: [role] for name in ROLE_ORDER}

    # When it is applied / Then synth stops, saying why, rather than the deploy
    with pytest.raises(ConfigError, match="Lambda environment"):
        mapping.apply(endpoint="https://x", domain_arn="arn", indices=indices, members=members)
    # And the pipelines of a typical stack fit
    mapping.apply(
        endpoint="https://x",
        domain_arn="arn",
        indices=indices[:20],
        members=members,
    )
