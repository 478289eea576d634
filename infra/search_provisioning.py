"""The search side on AWS: one CloudFormation custom resource per pipeline with search config.

Each resource carries its pipeline's validated config as JSON, so a changed config changes the properties and
CloudFormation sends an Update; the provisioning function (lambdas/osbatch/handlers/provision_search.py) runs
the same idempotent code as `osbatch setup`. Delete leaves models and search pipelines on the cluster
(osbatch.search.custom_resource says why). Connectors sign their model calls as the connector role, which
only OpenSearch Service, acting for this account's domains, can assume; it may invoke exactly the configured
SageMaker endpoints and Bedrock models.

The CDK Provider framework runs the CloudFormation protocol (responses to the pre-signed URL, errors
reported with their reason, no stack hung for an hour on a crash), so the function only returns a result.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.functions import LOG_RETENTION, FunctionFactory, FunctionSpec
from infra.inference import model_arn, model_condition, transform_jobs_arn
from infra.nag import acknowledge, allow, wildcard_finding
from infra.search import SearchAccess
from osbatch.infra_facts import (
    CONNECTORS,
    MODELS,
    REMOTE_JOB_PREFIX,
    RESOURCE_TYPE,
    SEARCH_PIPELINE,
    TASKS,
    Backend,
    ConfigError,
    PipelineConfig,
    SearchResourceProperties,
    hybrid_pipeline_name,
)

PROVISION_SEARCH = FunctionSpec(
    "osbatch.handlers.provision_search.handler",
    900,  # registering and deploying models are node tasks it waits for
    256,
    "Provision a pipeline's search side (custom resource)",
)
PROVISION_FUNCTION = "provision-search"
# docs.aws.amazon.com/opensearch-service/latest/developerguide/ml-amazon-connector.html: the connector
# role trusts OpenSearch Service, held to this account and its domains by aws:SourceAccount and aws:SourceArn.
OPENSEARCH_SERVICE = "opensearchservice.amazonaws.com"
LEGACY_SERVICE = "es.amazonaws.com"
# Cross-region inference profiles (us.anthropic..., global....) route to models in several regions.
INFERENCE_PROFILE = re.compile(r"^(?:us|eu|apac|us-gov|jp|au|ca|global)\.(?P<model>.+)$")
LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas" / "osbatch"
# What decides what provisioning sends: a change here re-provisions (idempotently) on the next deploy.
PROVISIONING_SOURCES = ("search", "config.py", "handlers/provision_search.py")


def has_search_side(config: PipelineConfig) -> bool:
    """Whether the cluster needs provisioning: models, search pipelines, or the ml-commons batch model."""
    return bool(config.models or config.search_pipelines) or config.inference.backend is Backend.ML_COMMONS


def provisioning_code_version(root: Path = LAMBDAS) -> str:
    digest = hashlib.sha256()
    for source in PROVISIONING_SOURCES:
        path = root / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def config_json(config: PipelineConfig) -> str:
    """The whole validated config, defaults included, so a changed default also reaches the cluster."""
    return json.dumps(config.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))


class SearchProvisioning(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Sequence[PipelineConfig],
        factory: FunctionFactory,
        search: SearchAccess,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        searched = [p for p in pipelines if has_search_side(p)]
        self.resources: dict[str, CustomResource] = {}
        self.connector_role: iam.Role | None = None
        self.role: iam.IRole | None = None  # the provisioning function's, when there is one
        if not searched:
            return
        for config in searched:
            _check_runs_on_aws(config)
        domains = {config.name: search.domain_arn(config) for config in searched}
        batch = [c for c in searched if c.inference.backend is Backend.ML_COMMONS]
        if batch or any(model.remote for config in searched for model in config.models):
            self.connector_role = self._connector_role(searched, sorted(set(domains.values())))

        self.function = factory.create(PROVISION_FUNCTION, PROVISION_SEARCH)
        role = self.function.role
        assert role is not None, "the factory always sets a role"
        self.role = role
        if self.connector_role is not None:
            # Creating a connector with credential.roleArn makes the domain check that the caller may pass it,
            # to OpenSearch Service only (its current and its legacy service principal).
            allow(
                role,
                ["iam:PassRole"],
                [self.connector_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": [OPENSEARCH_SERVICE, LEGACY_SERVICE]}},
            )
        for config in searched:
            self._grant_provisioning_calls(role, search, config, domains[config.name])

        provider = self._provider()
        version = provisioning_code_version()
        for config in searched:
            properties = SearchResourceProperties(
                config=config_json(config),
                endpoint=search.endpoint or str(config.sink.opensearch.endpoint),
                connector_role_arn=self.connector_role.role_arn if self.connector_role else "",
                region=stack.region,
                code_version=version,
            )
            resource = CustomResource(
                self,
                f"Search-{config.name}",
                service_token=provider.service_token,
                resource_type=RESOURCE_TYPE,
                properties=properties.model_dump(by_alias=True),
            )
            if self.connector_role is not None:
                resource.node.add_dependency(self.connector_role)  # and its policy
            self.resources[config.name] = resource

    def _connector_role(self, searched: Sequence[PipelineConfig], domain_arns: list[str]) -> iam.Role:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "ConnectorRole",
            description="osbatch: ML Commons connectors call the configured models as this role",
            assumed_by=iam.ServicePrincipal(
                OPENSEARCH_SERVICE,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": domain_arns},
                },
            ),
        )
        endpoints: list[str] = []
        models: list[str] = []
        for config in searched:
            for model in config.models:
                if model.remote is None:
                    continue
                if model.remote.sagemaker is not None:
                    # SageMaker ARNs hold endpoint names in lower case.
                    endpoints.append(
                        stack.format_arn(
                            service="sagemaker",
                            region=model.remote.sagemaker.region or stack.region,
                            resource="endpoint",
                            resource_name=model.remote.sagemaker.endpoint.lower(),
                        )
                    )
                if model.remote.bedrock is not None:
                    models.extend(
                        _bedrock_arns(stack, model.remote.bedrock.model, model.remote.bedrock.region)
                    )
        if endpoints:
            allow(role, ["sagemaker:InvokeEndpoint"], list(dict.fromkeys(endpoints)))
        self._grant_batch_connectors(role, searched)
        if models:
            allow(
                role,
                ["bedrock:InvokeModel"],
                list(dict.fromkeys(models)),
                reason="A cross-region inference profile routes each call to its model in any region of the "
                "profile's geography, so the model is granted in every region.",
            )
        return role

    def _grant_batch_connectors(self, role: iam.Role, searched: Sequence[PipelineConfig]) -> None:
        """The ml-commons backend's batch connectors run osbatch's transform jobs (search/batch_connector.py):
        create, describe and stop them, in each connector's region, by the remote job name prefix."""
        stack = Stack.of(self)
        batch = [
            c.inference.ml_commons
            for c in searched
            if c.inference.backend is Backend.ML_COMMONS and c.inference.ml_commons is not None
        ]
        if not batch:
            return
        regions = [settings.region or stack.region for settings in batch]
        jobs = [transform_jobs_arn(stack, region) for region in dict.fromkeys(regions)]
        reason = f"Transform job names are generated per job; held to the '{REMOTE_JOB_PREFIX}' prefix."
        allow(role, ["sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"], jobs, reason=reason)
        # Only with the models the connectors name (ml_commons.sagemaker.ModelName), in their regions.
        models = [
            model_arn(stack, settings.sagemaker.ModelName, settings.region or stack.region)
            for settings in batch
        ]
        allow(
            role,
            ["sagemaker:CreateTransformJob"],
            jobs,
            reason=reason,
            conditions=model_condition(list(dict.fromkeys(models))),
        )

    def _grant_provisioning_calls(
        self, role: iam.IRole, search: SearchAccess, config: PipelineConfig, domain_arn: str
    ) -> None:
        """ESHttp* on the paths osbatch.search.ml and .index call, with the methods they use, and no other."""
        pipelines = [spec.name for spec in config.search_pipelines] + [hybrid_pipeline_name(config)]
        ids = "Connector, model and task ids are generated by ML Commons at run time."
        # Each ML Commons call by its own path and method (osbatch.search.ml): ids are generated, so the
        # wildcards stand for one id each, never for another call (POST models/*/_batch_predict, _predict).
        post = [f"{CONNECTORS}/_create", f"{MODELS}/_search", f"{MODELS}/_register"]
        post += [f"{MODELS}/*/_deploy", f"{MODELS}/*/_undeploy"]
        grants: list[tuple[list[str], list[str], str | None]] = [
            (["es:ESHttpPut"], [f"{domain_arn}/{config.sink.index}"], None),  # create the index
            (["es:ESHttpGet"], [f"{domain_arn}/{config.sink.index}/_mapping"], None),  # check it
            (["es:ESHttpPost"], [f"{domain_arn}{path}" for path in post], ids),
            # update a connector, update a model (its description: the config's fingerprint)
            (["es:ESHttpPut"], [f"{domain_arn}{CONNECTORS}/*", f"{domain_arn}{MODELS}/*"], ids),
            (["es:ESHttpGet"], [f"{domain_arn}{TASKS}/*"], ids),
            (
                ["es:ESHttpGet", "es:ESHttpPut"],
                [f"{domain_arn}{SEARCH_PIPELINE}/{name}" for name in pipelines],
                None,
            ),
        ]
        for actions, resources, reason in grants:
            allow(role, actions, resources, reason=reason)
            search.trust([role], actions, resources)

    def _provider(self) -> cr.Provider:
        log_group = logs.LogGroup(self, "ProviderLogs", retention=LOG_RETENTION)
        # An explicit role: the framework's default carries AWSLambdaBasicExecutionRole (every log group).
        framework_role = iam.Role(
            self, "ProviderRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
        allow(framework_role, ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn])
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function,
            framework_on_event_role=framework_role,
            log_group=log_group,
        )
        # The framework invokes the function by ARN and by any qualifier (version or alias) of it.
        finding = wildcard_finding(framework_role, f"{self.function.function_arn}:*")
        assert finding is not None
        acknowledge(
            framework_role,
            finding,
            "The CDK Provider framework grants lambda:InvokeFunction on the provisioning function and its "
            "qualified ARNs (<arn>:*); that one function is all it can invoke.",
        )
        return provider


def _bedrock_arns(stack: Stack, model: str, region: str | None) -> list[str]:
    region = region or stack.region
    profile = INFERENCE_PROFILE.match(model)
    if profile is None:
        return [f"arn:{stack.partition}:bedrock:{region}::foundation-model/{model}"]
    return [
        stack.format_arn(service="bedrock", region=region, resource="inference-profile", resource_name=model),
        f"arn:{stack.partition}:bedrock:*::foundation-model/{profile['model']}",
    ]


def _check_runs_on_aws(config: PipelineConfig) -> None:
    """Fail synth, not the deploy, for models only the local node can run."""
    for position, model in enumerate(config.models):
        remote = model.remote
        if remote is None or (remote.sagemaker is None and remote.bedrock is None):
            raise ConfigError(
                f"pipeline '{config.name}': models.{position} ({model.name}): on AWS a model must be remote, "
                "with a sagemaker endpoint or a bedrock model (onnx and bare remote models run on the local "
                "node only)"
            )
