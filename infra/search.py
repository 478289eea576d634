"""OpenSearch access: SigV4 grants on existing domains, or one domain created for the stack."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from infra.nag import acknowledge, allow
from osbatch.config import ConfigError, OpenSearchTarget, PipelineConfig
from osbatch.search.client import DOMAIN_HOST

# Reads, index creation and bulk writes. Not DELETE or PATCH: osbatch never removes indices or documents.
HTTP_ACTIONS = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"]
DOMAIN_NAME_MAX = 28


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


def domain_name_for(stack_name: str) -> str:
    """A valid domain name (3-28 chars, [a-z][a-z0-9-]*) that is unique per stack."""
    base = re.sub(r"[^a-z0-9-]", "-", f"{stack_name.lower()}-search").strip("-")
    if not base[:1].isalpha():
        base = f"osb-{base}"
    if len(base) <= DOMAIN_NAME_MAX:
        return base
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:6]
    return f"{base[: DOMAIN_NAME_MAX - 7].rstrip('-')}-{digest}"


class SearchAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipelines: Sequence[PipelineConfig]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._domain_arns: list[str] = []
        self._arn_by_pipeline: dict[str, str] = {}
        self._domain_policy: list[dict[str, Any]] = []
        self.domain: opensearch.Domain | None = None
        self.endpoint: str | None = None

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
            self._domain_arns.append(arn)
            self._arn_by_pipeline[pipeline.name] = arn
        if created:
            target = _one_target(created)
            self.domain = self._create_domain(target, domain_name_for(stack.stack_name))
            self.endpoint = f"https://{self.domain.domain_endpoint}"
            self._arn_by_pipeline.update({p.name: self._domain_arns[0] for p in created})

    def domain_arn(self, pipeline: PipelineConfig) -> str:
        """The ARN of the domain a pipeline writes to (the created one, or the one its endpoint names)."""
        return self._arn_by_pipeline[pipeline.name]

    def grant_http(self, roles: Sequence[iam.IRole]) -> None:
        """SigV4 access for the functions that talk to the cluster; a created domain also trusts only them."""
        for role in roles:
            for arn in dict.fromkeys(self._domain_arns):  # pipelines may share a domain
                allow(
                    role,
                    HTTP_ACTIONS,
                    [arn, f"{arn}/*"],
                    reason="ESHttp* actions are authorized per path under the domain (<domain>/<index>/…).",
                )
        if self.domain is not None:
            self.trust(roles, HTTP_ACTIONS, [f"{self._domain_arns[0]}/*"])

    def trust(self, roles: Sequence[iam.IRole], actions: Sequence[str], resources: Sequence[str]) -> None:
        """Name roles in a created domain's access policy (no-op for existing domains, whose policy is
        theirs); each call adds one statement, so each role is trusted with exactly its own grant."""
        if self.domain is None:
            return
        self._domain_policy.append(
            {
                "Effect": "Allow",
                "Principal": {"AWS": [role.role_arn for role in roles]},
                "Action": list(actions),
                "Resource": list(resources) if len(resources) > 1 else resources[0],
            }
        )
        cfn = self.domain.node.default_child
        assert isinstance(cfn, opensearch.CfnDomain)
        # Set on the resource itself: the L2 `access_policies` would add a custom-resource Lambda.
        cfn.access_policies = {"Version": "2012-10-17", "Statement": list(self._domain_policy)}

    def _create_domain(self, target: OpenSearchTarget, name: str) -> opensearch.Domain:
        stack = Stack.of(self)
        count = target.instance_count
        zones = _zone_count(count)
        domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=name,
            version=_engine(target.engine_version),
            capacity=opensearch.CapacityConfig(
                data_nodes=count,
                data_node_instance_type=target.instance_type,
                multi_az_with_standby_enabled=False,  # needs dedicated masters and 3 zones
            ),
            ebs=opensearch.EbsOptions(volume_size=100, volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=zones)
            if zones
            else None,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_index_log_enabled=True,
                app_log_enabled=True,
            ),
            # Written below as a plain resource: the L2 would add a custom-resource Lambda for it.
            suppress_logs_resource_policy=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._domain_arns.append(stack.format_arn(service="es", resource="domain", resource_name=name))
        groups = [
            g for g in (domain.slow_search_log_group, domain.slow_index_log_group, domain.app_log_group) if g
        ]
        policy = logs.ResourcePolicy(
            self,
            "DomainLogsPolicy",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[group.log_group_arn for group in groups],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            ],
        )
        # The domain checks at creation that it may write its logs. Only the CfnDomain waits: the log groups
        # are children of the Domain construct, and the policy itself depends on them.
        cfn = domain.node.default_child
        assert isinstance(cfn, opensearch.CfnDomain)
        cfn.node.add_dependency(policy)
        self._acknowledge(domain, zones)
        return domain

    def _acknowledge(self, domain: opensearch.Domain, zones: int) -> None:
        reasons = {
            "AwsSolutions-OS1": "The functions run outside a VPC; access is SigV4-signed and the domain "
            "policy names only their roles.",
            "AwsSolutions-OS3": "Access is granted to IAM roles by the domain policy, not to IP ranges.",
            "AwsSolutions-OS4": "A batch-ingest target sized by the pipeline config; add dedicated masters "
            "for production clusters.",
        }
        if not zones:
            reasons["AwsSolutions-OS7"] = (
                "A single data node was configured (instance_count: 1); no zones to span."
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


def _zone_count(count: int) -> int:
    if count < 2:
        return 0
    if count % 2 == 0:
        return 2
    if count % 3 == 0:
        return 3
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
