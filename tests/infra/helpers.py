"""Building and reading the infra suite's synthesized templates."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import yaml
from aws_cdk.assertions import Template

from infra.functions import FUNCTIONS, FunctionSpec
from infra.notify import AlarmTargets
from infra.search_provisioning import PROVISION_FUNCTION, PROVISION_SEARCH
from infra.stack import OsbatchStack
from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.search.custom_resource import RESOURCE_TYPE, SearchResourceProperties

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pipelines" / "python-docs.yaml"
# The CLI passes cdk.json's feature flags; a bare App() would not. Bundling is skipped: tests stay offline.
CONTEXT = {**json.loads((ROOT / "cdk.json").read_text())["context"], "aws:cdk:bundling-stacks": []}


BATCH_SOURCE_BUCKET = "offlinebatch"  # the main stack's context batch_ingest_buckets


def example_data() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def pipeline(**overrides: Any) -> PipelineConfig:
    """The example pipeline with top-level sections replaced or deep-merged."""
    data = example_data()
    for key, value in overrides.items():
        data[key] = _merge(data.get(key), value)
    return parse_pipeline(data, "test pipeline")


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = _merge(merged.get(key), value)
        return merged
    return override


# A second pipeline on another domain, with a longer retry window and timeout than the example's,
# so the stack must take the maximum over pipelines.
SECOND = {
    "name": "docs",
    "source": {"prefix": "input/docs/", "suffix": ".json"},
    "inference": {
        "retry_time_window": "PT6H",
        "polling": {"timeout_hours": 96},
        # A model whose artifacts are KMS-encrypted in S3 and whose image is in an AWS-owned account
        "sagemaker_model": {
            "model_data_url": "s3://models-bucket/minilm/model.tar.gz",
            "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "image_accounts": ["763104351884"],
        },
    },
    "sink": {
        "opensearch": {"endpoint": "https://search-other-domain-xyz789.eu-west-1.es.amazonaws.com"},
        "index": "docs",
        "mapping": {},
    },
}
# A pipeline on the ml-commons backend with no other search side (infra/ml_commons.py).
BATCH = {
    "name": "batch",
    "source": {"prefix": "input/batch/"},
    "inference": {
        "backend": "ml-commons",
        "sagemaker": None,
        "ml_commons": {"model": "batch-minilm", "sagemaker": {"ModelName": "minilm-embedder"}},
    },
    "models": [],
    "search_pipelines": [],
    "search": {"query_model": None},
}
CREATED = {"sink": {"opensearch": {"endpoint": None, "create_domain": True}}}  # the production shape


ALARM_TARGETS = AlarmTargets(
    emails=("ops@example.com", "oncall@example.com"),
    topic_arns=("arn:aws:sns:us-east-1:111122223333:paging",),
)


def new_app() -> cdk.App:
    return cdk.App(context=CONTEXT)


@dataclass
class Synthesized:
    stack: OsbatchStack
    template: Template

    def __post_init__(self) -> None:
        # Crossing jsii for the whole template is slow; read it once.
        self.resources: dict[str, dict[str, Any]] = self.template.to_json()["Resources"]
        self.outputs: dict[str, dict[str, Any]] = self.template.to_json().get("Outputs", {})

    @classmethod
    def of(cls, stack: OsbatchStack) -> Synthesized:
        """The stack synthesized (this also runs CloudFormation's template validation)."""
        return cls(stack, Template.from_stack(stack))

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}


def trigger_rules(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """The pipelines' Object Created rules (infra/trigger.py), not the wake rules (infra/wake.py)."""
    return {k: v for k, v in synth.of_type("AWS::Events::Rule").items() if k.startswith("Trigger")}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """A CloudFormation value as one string, intrinsics shown as <...>, for substring assertions."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value, sort_keys=True)


# Every function the factory makes: the job functions, and the search provisioning custom resource's.
FACTORY_FUNCTIONS: dict[str, FunctionSpec] = {**FUNCTIONS, PROVISION_FUNCTION: PROVISION_SEARCH}
# The CDK Provider framework's own function, which relays CloudFormation requests to the provisioning one.
PROVIDER_FRAMEWORK_HANDLER = "framework.onEvent"


def function_ids(synth: Synthesized) -> dict[str, str]:
    """Function name (docs/architecture.md) -> logical id, matched by handler string (factory functions)."""
    by_handler = {spec.handler: name for name, spec in FACTORY_FUNCTIONS.items()}
    return {
        by_handler[props["Properties"]["Handler"]]: logical_id
        for logical_id, props in synth.of_type("AWS::Lambda::Function").items()
        if props["Properties"]["Handler"] in by_handler  # factory functions, not a framework's or inline one
    }


def role_id(synth: Synthesized, function: str) -> str:
    props = synth.resources[function_ids(synth)[function]]["Properties"]
    return str(props["Role"]["Fn::GetAtt"][0])


def statements_of_role(synth: Synthesized, role_logical_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        roles = [r.get("Ref") for r in policy["Properties"].get("Roles", [])]
        if role_logical_id in roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def statements(synth: Synthesized, function: str) -> list[dict[str, Any]]:
    return statements_of_role(synth, role_id(synth, function))


def actions(synth: Synthesized, function: str) -> set[str]:
    return {action for s in statements(synth, function) for action in as_list(s["Action"])}


def resources_for(synth: Synthesized, function: str, action: str) -> list[str]:
    return [
        render(resource)
        for s in statements(synth, function)
        if action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    ]


def all_allow_statements(synth: Synthesized) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        found.extend(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    for role in synth.of_type("AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            found.extend(s for s in inline["PolicyDocument"]["Statement"] if s["Effect"] == "Allow")
    return found


def definition(synth: Synthesized) -> dict[str, Any]:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    text = machine["Properties"]["DefinitionString"]
    parts = text["Fn::Join"][1] if isinstance(text, dict) else [text]
    return json.loads("".join(part if isinstance(part, str) else "TOKEN" for part in parts))


# The four shapes the scanners read (tests/infra/test_scanners.py): what `cdk synth` builds by default; every
# example pipeline with alarm targets, tags and batch-ingest buckets; the same on a created domain; and on a
# created domain with fine-grained access control.
SCAN_SHAPES = ("default", "examples", "created", "fine-grained")
SCAN_TAGS = {"cost-center": "search", "owner": "data-platform"}
# A bucket of the stack's account, and one another account owns (context batch_ingest_buckets).
SCAN_BATCH_BUCKETS = (BATCH_SOURCE_BUCKET, "partner-exports:444455556666")


def with_created_domain(config: PipelineConfig, *, fine_grained: bool) -> PipelineConfig:
    target = config.sink.opensearch.model_copy(
        update={"endpoint": None, "create_domain": True, "fine_grained_access_control": fine_grained}
    )
    return config.model_copy(update={"sink": config.sink.model_copy(update={"opensearch": target})})


def scan_shape(app: cdk.App, shape: str) -> OsbatchStack:
    """One stack of `shape` (SCAN_SHAPES) in app, named after it."""
    from infra.pipelines import DEFAULT_PATTERN, load_pipelines

    if shape == "default":
        return OsbatchStack(app, "osbatch-default", pipelines=load_pipelines(DEFAULT_PATTERN, ROOT))
    configs = [*load_pipelines(DEFAULT_PATTERN, ROOT), *load_pipelines("pipelines/examples/*.yaml", ROOT)]
    if shape != "examples":
        configs = [with_created_domain(c, fine_grained=shape == "fine-grained") for c in configs]
    return OsbatchStack(
        app,
        f"osbatch-{shape}",
        pipelines=configs,
        alarm_targets=ALARM_TARGETS,
        resource_tags=SCAN_TAGS,
        batch_ingest_buckets=list(SCAN_BATCH_BUCKETS),
    )


def search_resources(synth: Synthesized) -> dict[str, SearchResourceProperties]:
    """Pipeline name -> the properties of its custom resource, read back with the handler's own model."""
    found = {}
    for resource in synth.of_type(RESOURCE_TYPE).values():
        # Intrinsics (the role ARN, the region) resolve at deploy time; rendered as <...> here.
        values = {key: render(value) for key, value in resource["Properties"].items()}
        properties = SearchResourceProperties.model_validate(values)
        found[properties.pipeline().name] = properties
    return found


def connector_role(synth: Synthesized) -> str:
    (role,) = [k for k in synth.of_type("AWS::IAM::Role") if k.startswith("SearchProvisioningConnectorRole")]
    return role


@dataclass
class Synth:
    """The suite's one synthesized app: its main stack and the stack that creates its domain."""

    app: cdk.App
    main: Synthesized
    created: Synthesized


@dataclass
class ScanTemplates:
    paths: dict[str, Path]  # shape -> its template file
    templates: dict[str, dict[str, Any]]
