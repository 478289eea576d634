"""Fine-grained access control on a created domain: the functions' roles mapped to two OpenSearch roles.

With it on (sink.opensearch.fine_grained_access_control), IAM only lets a request in; the security plugin
then decides what it may do, by the backend roles the caller's IAM role maps to. A small custom resource
(inline code, infra/security_mapping_handler.py) signs six PUTs to the security REST API as the domain's
master user, a role only that function can assume:
- roles/osbatch-index: create, check and read the mapping of the pipelines' indices (prepare, plan-ingest);
- roles/osbatch-bulk: bulk into them, new fields included (ingest-chunk);
- roles/osbatch-load: read and set their refresh/replica settings, count and refresh them around a bulk load
  (plan-ingest, finalize, fail-job: search/bulk_load.py);
- rolesmapping/<each role>: those functions' role ARNs as backend roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import LOG_RETENTION
from infra.nag import allow

HANDLER = Path(__file__).with_name("security_mapping_handler.py")
SECURITY_API = "/_plugins/_security/api"
INDEX_ROLE, BULK_ROLE, LOAD_ROLE = "osbatch-index", "osbatch-bulk", "osbatch-load"
# Security-plugin actions, the counterparts of the IAM paths infra/search.py grants.
INDEX_ACTIONS = ["indices:admin/create", "indices:admin/get", "indices:admin/mappings/get"]
BULK_ACTIONS = [
    "indices:data/write/bulk*",
    "indices:data/write/index",
    "indices:admin/mapping/put",  # a document with a field the mapping lacks adds it
    "indices:admin/mapping/auto_put",
]
# GET and PUT _settings, _count (run as a size-0 search), _refresh (and its shard-level action).
LOAD_ACTIONS = [
    "indices:monitor/settings/get",
    "indices:admin/settings/update",
    "indices:data/read/search",
    "indices:admin/refresh*",
]
ROLES = (INDEX_ROLE, BULK_ROLE, LOAD_ROLE)


def security_paths() -> list[str]:
    return [f"{SECURITY_API}/{kind}/{role}" for role in ROLES for kind in ("roles", "rolesmapping")]


class SecurityMapping(Construct):
    """The master-user role comes first (the domain names it); the mapping once the grants are known."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.master_role = iam.Role(
            self,
            "MasterRole",
            description="osbatch: the created domain's fine-grained access control master user",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )

    def apply(
        self,
        *,
        endpoint: str,
        domain_arn: str,
        indices: Sequence[str],
        checkers: Sequence[iam.IRole],
        writers: Sequence[iam.IRole],
        loaders: Sequence[iam.IRole],
    ) -> list[dict[str, object]]:
        """Create the mapping; return the domain-policy statement that lets the master role apply it."""
        stack = Stack.of(self)
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        allow(self.master_role, ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn])
        paths = [f"{domain_arn}{path}" for path in security_paths()]
        allow(self.master_role, ["es:ESHttpPut"], paths)
        function = lambda_.Function(
            self,
            "Function",
            description="osbatch: map the functions' roles in the created domain's security plugin",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text(encoding="utf-8")),
            role=self.master_role,
            timeout=Duration.minutes(2),
            log_group=log_group,
        )
        index_role = {
            "index_permissions": [{"index_patterns": list(indices), "allowed_actions": INDEX_ACTIONS}]
        }
        bulk_role = {
            "cluster_permissions": ["indices:data/write/bulk"],
            "index_permissions": [{"index_patterns": list(indices), "allowed_actions": BULK_ACTIONS}],
        }
        load_role = {
            "index_permissions": [{"index_patterns": list(indices), "allowed_actions": LOAD_ACTIONS}]
        }
        bodies = [
            index_role,
            {"backend_roles": [role.role_arn for role in checkers]},
            bulk_role,
            {"backend_roles": [role.role_arn for role in writers]},
            load_role,
            {"backend_roles": [role.role_arn for role in loaders]},
        ]
        CustomResource(
            self,
            "Mapping",
            service_token=function.function_arn,
            resource_type="Custom::OpenSearchRoleMapping",
            properties={
                "Endpoint": endpoint,
                "Region": stack.region,
                "Requests": [
                    [path, stack.to_json_string(body)]
                    for path, body in zip(security_paths(), bodies, strict=True)
                ],
            },
        )
        return [
            {
                "Effect": "Allow",
                "Principal": {"AWS": self.master_role.role_arn},
                "Action": "es:ESHttpPut",
                "Resource": paths,
            }
        ]
