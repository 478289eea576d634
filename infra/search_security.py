"""Fine-grained access control on a created domain: the functions' roles mapped to OpenSearch roles.

With it on (sink.opensearch.fine_grained_access_control), IAM only lets a request in; the security plugin
then decides what it may do, by the backend roles the caller's IAM role maps to. A small custom resource
(inline code, infra/security_mapping_handler.py) signs PUTs to the security REST API as the domain's master
user, with bodies the stack sets in the function's environment and never takes from the invoking event, so
invoking it can only re-apply this stack's mapping:
- roles/osbatch-index: create, check and read the mapping of the pipelines' indices (prepare, plan-ingest,
  and provision-search, which creates the index before its models);
- roles/osbatch-bulk: bulk into them, new fields included (ingest-chunk);
- roles/osbatch-load: read and set their refresh/replica settings, count and refresh them around a bulk load
  (plan-ingest, finalize, fail-job: search/bulk_load.py);
- roles/osbatch-ml-provision: the ML Commons and search-pipeline calls of provisioning (provision-search);
- roles/osbatch-ml-submit: find the batch model, `_batch_predict`, find its tasks (start-job);
- roles/osbatch-ml-poll: read and cancel a batch task (poll-job, fail-job);
- rolesmapping/<each role>: those functions' role ARNs as backend roles.
A role no function needs (no ml-commons pipeline, no search side) is neither written nor granted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import LOG_RETENTION
from infra.nag import allow
from osbatch.infra_facts import ConfigError

HANDLER = Path(__file__).with_name("security_mapping_handler.py")
SECURITY_API = "/_plugins/_security/api"
INDEX_ROLE, BULK_ROLE, LOAD_ROLE = "osbatch-index", "osbatch-bulk", "osbatch-load"
ML_PROVISION_ROLE, ML_SUBMIT_ROLE, ML_POLL_ROLE = (
    "osbatch-ml-provision",
    "osbatch-ml-submit",
    "osbatch-ml-poll",
)
# Security-plugin actions, the counterparts of the IAM paths infra/search.py grants.
# Prepare's incremental re-embedding (lambdas/osbatch/incremental) too: put osbatch's fields in the mapping,
# _mget fingerprints (and its shard-level action), update unchanged documents through _bulk, page the ids
# of a source's documents (search). A role of its
# own would not fit the mapping function's environment (ENVIRONMENT_LIMIT) with the test stack's indices.
INDEX_ACTIONS = [
    "indices:admin/create",
    "indices:admin/get",
    "indices:admin/mappings/get",
    "indices:admin/mapping/put",
    "indices:data/read/mget*",
    "indices:data/write/bulk*",
    "indices:data/write/update",
    "indices:data/read/search*",
]
BULK_ACTIONS = [
    "indices:data/write/bulk*",
    "indices:data/write/index",
    "indices:admin/mapping/put",  # a document with a field the mapping lacks adds it
    "indices:admin/mapping/auto_put",
]
# GET and PUT _settings, _count (run as a size-0 search), _refresh (and its shard-level action); and
# Finalize's _delete_by_query of a source's earlier version (source.sync mirror, lambdas/osbatch/incremental).
LOAD_ACTIONS = [
    "indices:monitor/settings/get",
    "indices:admin/settings/update",
    "indices:data/read/search",
    "indices:admin/refresh*",
    "indices:data/write/delete/byquery",
    "indices:data/write/delete",
]
# ML Commons' transport action names (the NAME of each ...Action class in github.com/opensearch-project/
# ml-commons, common/src/main/java/org/opensearch/ml/common/transport/), the ones each REST call runs:
# POST models/<id>/_batch_predict runs ml/predict (RestMLPredictionAction); POST tasks/<id>/_cancel runs
# ml/tasks/cancel (MLCancelBatchJobAction). OpenSearch's reserved ml_full_access role grants them all
# (cluster:admin/opensearch/ml/*); these roles grant only what the calls in osbatch.search.ml need.
ML = "cluster:admin/opensearch/ml"
ML_SUBMIT_ACTIONS = [f"{ML}/models/search", f"{ML}/predict", f"{ML}/tasks/search"]
ML_POLL_ACTIONS = [f"{ML}/tasks/get", f"{ML}/tasks/cancel"]
ML_PROVISION_ACTIONS = [
    f"{ML}/models/search",
    f"{ML}/create_connector",
    f"{ML}/connectors/update",
    f"{ML}/register_model",
    f"{ML}/models/update*",  # and models/update_cache, which an update runs on the model's nodes
    f"{ML}/deploy_model*",  # and deploy_model_on_nodes, which a deploy runs
    f"{ML}/undeploy_model*",  # undeploy_models (the REST call) and undeploy_model (its node requests)
    f"{ML}/tasks/get",  # waits for the register and deploy tasks
    "cluster:admin/search/pipeline/get",
    "cluster:admin/search/pipeline/put",
]
ROLE_ORDER = (
    INDEX_ROLE,
    BULK_ROLE,
    LOAD_ROLE,
    ML_PROVISION_ROLE,
    ML_SUBMIT_ROLE,
    ML_POLL_ROLE,
)
MAPPING_FUNCTION_SUFFIX = "-fgac-role-mapping"
FUNCTION_NAME_MAX = 64
# Lambda's limit on a function's environment (keys and values); a role ARN resolves to at most this long.
ENVIRONMENT_LIMIT = 4096
ROLE_ARN_MAX = len("arn:aws-us-gov:iam::123456789012:role/") + 64
ENDPOINT_MAX = 128
# The index list is in the environment once (INDICES), not once per role: the handler puts it in its place.
INDICES_PLACEHOLDER = "<indices>"


def role_bodies(indices: Sequence[str] | str) -> dict[str, dict[str, Any]]:
    """Each OpenSearch role's body (PUT _plugins/_security/api/roles/<name>); `indices` may be the
    placeholder the handler replaces with its INDICES."""
    patterns = indices if isinstance(indices, str) else list(indices)

    def on_indices(actions: list[str]) -> list[dict[str, Any]]:
        return [{"index_patterns": patterns, "allowed_actions": actions}]

    return {
        INDEX_ROLE: {
            "cluster_permissions": ["indices:data/write/bulk", "indices:data/read/mget"],
            "index_permissions": on_indices(INDEX_ACTIONS),
        },
        BULK_ROLE: {
            "cluster_permissions": ["indices:data/write/bulk"],
            "index_permissions": on_indices(BULK_ACTIONS),
        },
        LOAD_ROLE: {"index_permissions": on_indices(LOAD_ACTIONS)},
        ML_PROVISION_ROLE: {"cluster_permissions": ML_PROVISION_ACTIONS},
        ML_SUBMIT_ROLE: {"cluster_permissions": ML_SUBMIT_ACTIONS},
        ML_POLL_ROLE: {"cluster_permissions": ML_POLL_ACTIONS},
    }


def security_paths(roles: Sequence[str]) -> list[str]:
    return [f"{SECURITY_API}/{kind}/{role}" for role in roles for kind in ("roles", "rolesmapping")]


def mapping_function_name(stack_name: str) -> str:
    """A fixed name, so the master role's trust can name the function without depending on it."""
    name = f"{stack_name}{MAPPING_FUNCTION_SUFFIX}"
    if len(name) <= FUNCTION_NAME_MAX:
        return name
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:8]
    room = FUNCTION_NAME_MAX - len(MAPPING_FUNCTION_SUFFIX) - len(digest) - 1
    return f"{stack_name[:room]}-{digest}{MAPPING_FUNCTION_SUFFIX}"


class SecurityMapping(Construct):
    """The master-user role comes first (the domain names it); the mapping once the grants are known."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function_name = mapping_function_name(stack.stack_name)
        self.master_role = iam.Role(
            self,
            "MasterRole",
            description="osbatch: the created domain's fine-grained access control master user",
            # The trust Lambda documents for an execution role ("Defining Lambda function permissions with an
            # execution role", docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html): Lambda
            # documents no aws:SourceArn for assuming it, so a condition on one could make the function
            # unassumable. What ties the role to this stack is the function: it applies only the bodies in its
            # own environment, and handing the role to another function takes iam:PassRole on it.
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )

    def apply(
        self,
        *,
        endpoint: str,
        domain_arn: str,
        indices: Sequence[str],
        members: Mapping[str, Sequence[iam.IRole]],
    ) -> tuple[list[dict[str, object]], CustomResource]:
        """Map each OpenSearch role (ROLE_ORDER) to the IAM roles `members` names; skip roles with none.
        Returns the domain-policy statement that lets the master role apply it, and the resource."""
        stack = Stack.of(self)
        roles = [role for role in ROLE_ORDER if members.get(role)]
        bodies = role_bodies(INDICES_PLACEHOLDER)
        requests: list[list[object]] = []
        for role in roles:
            requests.append([f"{SECURITY_API}/roles/{role}", bodies[role]])
            arns = list(dict.fromkeys(r.role_arn for r in members[role]))
            requests.append([f"{SECURITY_API}/rolesmapping/{role}", {"backend_roles": arns}])
        patterns = json.dumps(list(indices), separators=(",", ":"))
        _check_fits_the_environment(requests, patterns, sum(len(members[role]) for role in roles))

        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        allow(self.master_role, ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn])
        paths = [f"{domain_arn}{path}" for path in security_paths(roles)]
        allow(self.master_role, ["es:ESHttpPut"], paths)
        mapping = stack.to_json_string(requests)
        function = lambda_.Function(
            self,
            "Function",
            function_name=self.function_name,
            description="osbatch: map the functions' roles in the created domain's security plugin",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text(encoding="utf-8")),
            role=self.master_role,
            timeout=Duration.minutes(2),
            log_group=log_group,
            # What it PUTs is the stack's, not the caller's: invoking it can only apply these again.
            environment={"ENDPOINT": endpoint, "REQUESTS": mapping, "INDICES": patterns},
        )
        resource = CustomResource(
            self,
            "Mapping",
            service_token=function.function_arn,
            resource_type="Custom::OpenSearchRoleMapping",
            # A copy of the function's REQUESTS, so a changed mapping reaches CloudFormation as an Update;
            # the handler never reads it.
            properties={"Mapping": mapping, "Indices": patterns},
        )
        resource.node.add_dependency(function)  # the function's environment is updated first
        statement: dict[str, object] = {
            "Effect": "Allow",
            "Principal": {"AWS": self.master_role.role_arn},
            "Action": "es:ESHttpPut",
            "Resource": paths,
        }
        return [statement], resource


def _check_fits_the_environment(requests: list[list[object]], patterns: str, arn_count: int) -> None:
    """Fail synth, not the deploy, when the mapping would outgrow Lambda's 4 KB environment."""
    size = len(json.dumps(requests, separators=(",", ":"))) + arn_count * ROLE_ARN_MAX + ENDPOINT_MAX
    size += len(patterns)
    if size > ENVIRONMENT_LIMIT - len("ENDPOINTREQUESTSINDICES"):
        raise ConfigError(
            f"fine_grained_access_control: the role mapping for these indices needs about {size} bytes of "
            f"Lambda environment, over its {ENVIRONMENT_LIMIT}; deploy fewer pipelines per stack"
        )
