"""OpenSearch access: SigV4 grants on each pipeline's index, on existing domains or on one created domain.

Least privilege on the domain: the functions reach their pipelines' indices and nothing else of it, not
its settings, snapshots or other indices. ESHttp* actions are authorized on the request path
(`domain/<d>/<path>`), so each grant names an exact path:
- index checkers (prepare, plan-ingest): PUT and HEAD /<index> (create, exists), GET /<index>/_mapping;
- bulk writers (ingest-chunk): POST /<index>/_bulk.
A created domain's access policy says the same, and it refuses bulk lines that name another index
(`rest.action.multi.allow_explicit_index: false`), since the path is all IAM sees.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

from aws_cdk import Aws, CustomResource, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from infra.nag import acknowledge, allow
from infra.search_security import BULK_ROLE, INDEX_ROLE, LOAD_ROLE, SecurityMapping
from osbatch.infra_facts import DOMAIN_HOST, ConfigError, OpenSearchTarget, PipelineConfig

# (action, path under the index) for each kind of client: what ensure_compatible_index and BulkWriter send.
INDEX_CHECKS = (("es:ESHttpPut", ""), ("es:ESHttpHead", ""), ("es:ESHttpGet", "/_mapping"))
BULK_WRITES = (("es:ESHttpPost", "/_bulk"),)
# A bulk load into a new index relaxes its settings and restores them (lambdas/osbatch/search/bulk_load.py:
# get/put _settings, _count, _refresh).
LOAD_SETTINGS = (
    ("es:ESHttpGet", "/_settings"),
    ("es:ESHttpPut", "/_settings"),
    ("es:ESHttpGet", "/_count"),
    ("es:ESHttpPost", "/_count"),
    ("es:ESHttpPost", "/_refresh"),
)
# Incremental re-embedding (lambdas/osbatch/incremental): Prepare puts osbatch's fields into the mapping,
# reads fingerprints back with _mget, updates unchanged documents with _bulk and pages a source's ids
# (_search); Finalize deletes a source's earlier version's leftovers (_delete_by_query, source.sync mirror).
INCREMENTAL = (
    ("es:ESHttpPut", "/_mapping"),
    ("es:ESHttpGet", "/_mget"),
    ("es:ESHttpPost", "/_mget"),
    ("es:ESHttpPost", "/_bulk"),
    ("es:ESHttpGet", "/_search"),
    ("es:ESHttpPost", "/_search"),
    ("es:ESHttpPost", "/_delete_by_query"),
)
DOMAIN_NAME_MAX = 28
STACK_SUFFIX_LENGTH = 8  # the first group of the stack id's UUID
# Bulk requests to /<index>/_bulk may not redirect lines to other indices, which the path grant cannot see.
ADVANCED_OPTIONS = {"rest.action.multi.allow_explicit_index": "false"}


def domain_of(endpoint: str, origin: str) -> tuple[str, str]:
    """(domain name, region) of a managed-domain endpoint; anything else cannot be granted by ARN."""
    host = urlparse(endpoint).hostname or ""
    match = DOMAIN_HOST.match(host)
    if not match:
        raise ConfigError(
            f"{origin}: sink.opensearch.endpoint: cannot derive an OpenSearch Service domain from "
            f"'{endpoint}'; use the domain endpoint (https://search-<domain>-<id>.<region>.es.amazonaws.com) "
            "or create_domain: true"
        )
    return match["name"], match["region"]


def domain_name_prefix(stack_name: str) -> str:
    """The fixed part of the created domain's name: [a-z][a-z0-9-]*, short enough for the stack suffix."""
    base = re.sub(r"[^a-z0-9-]", "-", stack_name.lower()).strip("-")
    if not base[:1].isalpha():
        base = f"osb-{base}"
    room = DOMAIN_NAME_MAX - STACK_SUFFIX_LENGTH - 1
    if len(base) <= room:
        return base
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:6]
    return f"{base[: room - 7].rstrip('-')}-{digest}"


def domain_name_for(stack_name: str) -> str:
    """The created domain's name: the prefix and the first 8 hex digits of the stack id's UUID. The domain
    is retained when the stack is destroyed; a stack re-created under the same name gets a new id, and so a
    domain name that is free, instead of failing on the retained domain's."""
    stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.join("-", [domain_name_prefix(stack_name), Fn.select(0, Fn.split("-", stack_uuid))])


class SearchAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipelines: Sequence[PipelineConfig]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # (domain ARN, index) pairs the functions may use, one per pipeline (pipelines may share them).
        self._indices: list[tuple[str, str]] = []
        self._arn_by_pipeline: dict[str, str] = {}
        # A created domain's access policy: every statement a grant or trust() added.
        self._domain_policy: list[dict[str, object]] = []
        self.domain: opensearch.Domain | None = None
        self.endpoint: str | None = None
        self._security: SecurityMapping | None = None
        self._members: dict[str, list[iam.IRole]] = {}
        self._domain_arn = ""

        created = [p for p in pipelines if p.sink.opensearch.create_domain]
        existing = [p for p in pipelines if p.sink.opensearch.endpoint]
        if created and existing:
            # OPENSEARCH_ENDPOINT overrides every pipeline's endpoint (docs/architecture.md), so one stack
            # cannot serve a created domain and existing ones at the same time.
            raise ConfigError(
                f"pipelines {[p.name for p in created]} set sink.opensearch.create_domain but "
                f"{[p.name for p in existing]} set sink.opensearch.endpoint; deploy them in separate stacks"
            )
        for pipeline in existing:
            assert pipeline.sink.opensearch.endpoint is not None
            name, region = domain_of(pipeline.sink.opensearch.endpoint, f"pipeline '{pipeline.name}'")
            arn = stack.format_arn(service="es", region=region, resource="domain", resource_name=name)
            self._indices.append((arn, pipeline.sink.index))
            self._arn_by_pipeline[pipeline.name] = arn
        if created:
            target = _one_target(created)
            name = domain_name_for(stack.stack_name)
            self.domain = self._create_domain(target, name)
            self.endpoint = f"https://{self.domain.domain_endpoint}"
            # The domain's own ARN attribute cannot appear in its access policy; the name-derived one can.
            arn = stack.format_arn(service="es", resource="domain", resource_name=name)
            self._domain_arn = arn
            self._indices.extend((arn, p.sink.index) for p in created)
            self._arn_by_pipeline.update({p.name: arn for p in created})
        self._indices = list(dict.fromkeys(self._indices))

    def grant_index_access(
        self,
        checkers: Sequence[iam.IRole],
        writers: Sequence[iam.IRole],
        loaders: Sequence[iam.IRole] = (),
        incremental: Sequence[iam.IRole] = (),
    ) -> None:
        """SigV4 access to the pipelines' indices only; a created domain's policy trusts only these roles."""
        grants = (
            [(role, INDEX_CHECKS) for role in checkers]
            + [(role, BULK_WRITES) for role in writers]
            + [(role, LOAD_SETTINGS) for role in loaders]
            + [(role, INCREMENTAL) for role in incremental]
        )
        statements: list[dict[str, object]] = []
        for role, paths in grants:
            for action, resources in self._by_action(paths).items():
                allow(role, [action], resources)
                statements.append(
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": role.role_arn},
                        "Action": action,
                        "Resource": resources,
                    }
                )
        # In the security plugin, prepare's incremental actions are the index role's and finalize's the load
        # role's (infra/search_security.py), so `incremental` maps to no role of its own.
        self._members = {INDEX_ROLE: list(checkers), BULK_ROLE: list(writers), LOAD_ROLE: list(loaders)}
        if self.domain is not None:
            self._extend_domain_policy(statements)

    def map_roles(self, members: Mapping[str, Sequence[iam.IRole]]) -> CustomResource | None:
        """With fine-grained access control, map the index roles grant_index_access gave and `members`
        (OpenSearch role -> IAM roles, infra/search_security.py) in the security plugin; the mapping's
        custom resource, which whatever calls the domain as those roles must wait for. None without it."""
        if self._security is None:
            return None
        assert self.endpoint is not None
        merged = {role: list(arns) for role, arns in self._members.items()}
        for role, extra in members.items():
            merged[role] = list(dict.fromkeys([*merged.get(role, []), *extra]))
        statements, resource = self._security.apply(
            endpoint=self.endpoint,
            domain_arn=self._domain_arn,
            indices=list(dict.fromkeys(index for _, index in self._indices)),
            members=merged,
        )
        self._extend_domain_policy(statements)
        return resource

    def domain_arn(self, pipeline: PipelineConfig) -> str:
        """The ARN of the domain a pipeline writes to (the created one, or the one its endpoint names)."""
        return self._arn_by_pipeline[pipeline.name]

    def trust(self, roles: Sequence[iam.IRole], actions: Sequence[str], resources: Sequence[str]) -> None:
        """Name roles in a created domain's access policy (no-op for existing domains, whose policy is
        theirs); each call adds one statement, so each role is trusted with exactly its own grant."""
        if self.domain is None:
            return
        self._extend_domain_policy(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [role.role_arn for role in roles]},
                    "Action": list(actions),
                    "Resource": list(resources) if len(resources) > 1 else resources[0],
                }
            ]
        )

    def _extend_domain_policy(self, statements: list[dict[str, object]]) -> None:
        assert self.domain is not None
        self._domain_policy.extend(statements)
        cfn = self.domain.node.default_child
        assert isinstance(cfn, opensearch.CfnDomain)
        # Set on the resource itself: the L2 `access_policies` would add a custom-resource Lambda.
        cfn.access_policies = {"Version": "2012-10-17", "Statement": list(self._domain_policy)}

    def _by_action(self, paths: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for action, suffix in paths:
            found.setdefault(action, []).extend(f"{arn}/{index}{suffix}" for arn, index in self._indices)
        return found

    def _create_domain(self, target: OpenSearchTarget, name: str) -> opensearch.Domain:
        stack = Stack.of(self)
        count = target.instance_count
        zones = _zone_count(target)
        masters = target.dedicated_master_count or None
        if target.fine_grained_access_control:
            if not target.engine_version.startswith("OpenSearch_"):
                raise ConfigError("sink.opensearch.fine_grained_access_control needs an OpenSearch_ engine")
            self._security = SecurityMapping(self, "Security")
        domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=name,
            version=_engine(target.engine_version),
            capacity=opensearch.CapacityConfig(
                data_nodes=count,
                data_node_instance_type=target.instance_type,
                master_nodes=masters,
                master_node_instance_type=target.dedicated_master_type if masters else None,
                # Standby costs a third of the data nodes; opt in on the domain if reads must never pause.
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(volume_size=100, volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=zones)
            if zones
            else None,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
            advanced_options=ADVANCED_OPTIONS,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(
                master_user_arn=self._security.master_role.role_arn
            )
            if self._security
            else None,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_index_log_enabled=True,
                app_log_enabled=True,
                # Who did what through the security plugin; it exists only with fine-grained access control.
                audit_log_enabled=True if self._security is not None else None,
            ),
            # Written below as a plain resource: the L2 would add a custom-resource Lambda for it.
            suppress_logs_resource_policy=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        groups = [
            g
            for g in (
                domain.slow_search_log_group,
                domain.slow_index_log_group,
                domain.app_log_group,
                domain.audit_log_group,
            )
            if g
        ]
        # Confused-deputy guard: OpenSearch Service writes these logs for this domain only.
        domain_arn = stack.format_arn(service="es", resource="domain", resource_name=name)
        policy = logs.ResourcePolicy(
            self,
            "DomainLogsPolicy",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[group.log_group_arn for group in groups],
                    conditions={
                        "StringEquals": {"aws:SourceAccount": stack.account},
                        "ArnLike": {"aws:SourceArn": domain_arn},
                    },
                )
            ],
        )
        # The domain checks at creation that it may write its logs. Only the CfnDomain waits: the log groups
        # are children of the Domain construct, and the policy itself depends on them.
        cfn = domain.node.default_child
        assert isinstance(cfn, opensearch.CfnDomain)
        cfn.node.add_dependency(policy)
        self._acknowledge(domain, target, zones)
        return domain

    def _acknowledge(self, domain: opensearch.Domain, target: OpenSearchTarget, zones: int) -> None:
        reasons = {
            "AwsSolutions-OS1": "The functions run outside a VPC; access is SigV4-signed and the domain "
            "policy names only their roles, each on its pipelines' index paths.",
            "AwsSolutions-OS3": "Access is granted to IAM roles by the domain policy, not to IP ranges.",
        }
        if not target.dedicated_master_count:
            reasons["AwsSolutions-OS4"] = (
                "sink.opensearch.development: true asked for a domain without dedicated masters."
            )
        if not zones:
            reasons["AwsSolutions-OS7"] = (
                "sink.opensearch.development: true with a single data node; no zones to span."
            )
        for rule, reason in reasons.items():
            acknowledge(domain, rule, reason)


def _one_target(pipelines: Sequence[PipelineConfig]) -> OpenSearchTarget:
    targets = {p.sink.opensearch for p in pipelines}
    if len(targets) > 1:
        raise ConfigError(
            f"pipelines {[p.name for p in pipelines]} create a domain with different settings; "
            "the stack creates one domain, so give them the same sink.opensearch"
        )
    return next(iter(targets))


def _zone_count(target: OpenSearchTarget) -> int:
    """Zones to spread over: three for a production domain (the config checked its shape); a development
    one spreads what it can."""
    count = target.instance_count
    if not target.development or count % 3 == 0:
        return 3
    if count < 2:
        return 0
    if count % 2 == 0:
        return 2
    raise ConfigError(
        f"sink.opensearch.instance_count: {count} nodes cannot be spread evenly over 2 or 3 zones; "
        "use an even number or a multiple of 3"
    )


def _engine(version: str) -> opensearch.EngineVersion:
    engine, _, number = version.partition("_")
    if engine == "OpenSearch" and number:
        return opensearch.EngineVersion.open_search(number)
    if engine == "Elasticsearch" and number:
        return opensearch.EngineVersion.elasticsearch(number)
    raise ConfigError(f"sink.opensearch.engine_version: '{version}' is not like 'OpenSearch_2.19'")
