"""The function factory: every function gets the same runtime, logging, tracing, layer and environment."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Stack, Stage
from aws_cdk.assertions import Template

from infra.functions import FUNCTIONS
from infra.layer import INSTALL_OPTIONS, dependencies_layer
from infra.stack import OsbatchStack
from osbatch.config import DEPLOYED_PIPELINES_FILE, pipelines_from_json
from tests.infra.helpers import (
    FACTORY_FUNCTIONS,
    PROVIDER_FRAMEWORK_HANDLER,
    ROOT,
    Synthesized,
    function_ids,
    new_app,
    pipeline,
    render,
    trigger_rules,
)

DOCUMENTED_HANDLERS = {
    "submit": "osbatch.handlers.submit.handler",
    "prepare": "osbatch.handlers.prepare.handler",
    "start-job": "osbatch.handlers.start_job.handler",
    "park-job": "osbatch.handlers.park_job.handler",
    "wake-job": "osbatch.handlers.wake_job.handler",
    "poll-job": "osbatch.handlers.poll_job.handler",
    "plan-ingest": "osbatch.handlers.plan_ingest.handler",
    "ingest-chunk": "osbatch.handlers.ingest_chunk.handler",
    "finalize": "osbatch.handlers.finalize.handler",
    "fail-job": "osbatch.handlers.fail_job.handler",
}
PROVISIONING_HANDLER = "osbatch.handlers.provision_search.handler"
COMMON_ENV = {
    "JOB_TABLE",
    "OUTPUT_BUCKET",
    "DEAD_LETTER_BUCKET",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
}


def test_functions_are_exactly_the_documented_handlers(main: Synthesized) -> None:
    # Given the synthesized functions
    handlers = {p["Properties"]["Handler"] for p in main.of_type("AWS::Lambda::Function").values()}

    # Then there is one per row of docs/architecture.md, plus the search provisioning resource's function
    # and the Provider framework's relay, and no other (no custom-resource helpers for policies or logs)
    assert handlers == {*DOCUMENTED_HANDLERS.values(), PROVISIONING_HANDLER, PROVIDER_FRAMEWORK_HANDLER}
    assert {name: spec.handler for name, spec in FUNCTIONS.items()} == DOCUMENTED_HANDLERS


def test_every_function_has_the_factory_settings(main: Synthesized) -> None:
    # Given every function and the log groups
    (layer,) = main.of_type("AWS::Lambda::LayerVersion")
    log_groups = main.of_type("AWS::Logs::LogGroup")

    for name, logical_id in function_ids(main).items():
        props = main.resources[logical_id]["Properties"]
        # Then each runs python3.12 on arm64 with X-Ray tracing and the shared dependency layer
        assert props["Runtime"] == "python3.12", name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Layers"] == [{"Ref": layer}], name
        # And logs JSON to its own log group, which has a retention period
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group]["Properties"]["RetentionInDays"] == 30, name
        # And its timeout and memory come from its spec
        assert props["Timeout"] == FACTORY_FUNCTIONS[name].timeout_seconds, name
        assert props["MemorySize"] == FACTORY_FUNCTIONS[name].memory_mb, name


def test_layer_targets_the_functions_runtime_and_architecture(main: Synthesized) -> None:
    # Given the dependency layer
    main.template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        # Then its wheels are only used where they were built for
        {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["arm64"]},
    )


def test_environment_follows_the_contract(main: Synthesized) -> None:
    # Given each function's environment
    env = {
        name: main.resources[logical_id]["Properties"]["Environment"]["Variables"]
        for name, logical_id in function_ids(main).items()
    }

    # Then all share the common variables, with the metrics namespace osbatch
    for name, variables in env.items():
        assert set(variables) >= COMMON_ENV, name
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "osbatch"
    # And only the documented functions get the extra ones
    assert {n for n, v in env.items() if "STATE_MACHINE_ARN" in v} == {"submit"}
    assert {n for n, v in env.items() if "EVENT_BUS_NAME" in v} == {"finalize", "fail-job"}
    # And no function gets a variable no handler reads, nor the configs (they ship in the code asset)
    for name, variables in env.items():
        assert not {"OSBATCH_PIPELINES", "INPUT_BUCKET", "SAGEMAKER_ROLE_ARN"} & set(variables), name
    # And the state machine ARN is built from its name, so submit does not depend on the state machine
    assert render(env["submit"]["STATE_MACHINE_ARN"]).endswith(":stateMachine:osbatch-jobs")
    # And existing domains need no endpoint override
    assert not any("OPENSEARCH_ENDPOINT" in v for v in env.values())


def test_created_domain_endpoint_reaches_the_search_functions(created: Synthesized) -> None:
    # Given the stack that creates its domain
    (domain,) = created.of_type("AWS::OpenSearchService::Domain")
    env = {
        name: created.resources[logical_id]["Properties"]["Environment"]["Variables"]
        for name, logical_id in function_ids(created).items()
    }

    # Then the functions that talk to the cluster get the domain's https endpoint (finalize and fail-job
    # restore the index settings after a load), and no other function does
    with_endpoint = {n for n, v in env.items() if "OPENSEARCH_ENDPOINT" in v}
    assert with_endpoint == {"prepare", "plan-ingest", "ingest-chunk", "finalize", "fail-job"}
    assert {n for n, v in env.items() if "EVENT_BUS_NAME" in v} == {"finalize", "fail-job"}
    assert render(env["ingest-chunk"]["OPENSEARCH_ENDPOINT"]) == f"https://<{domain}.DomainEndpoint>"


def code_dir(synth: Synthesized, function: str) -> Path:
    """The staged code asset a function deploys: cdk.out/asset.<hash>, the hash being its S3 key."""
    code = synth.resources[function_ids(synth)[function]]["Properties"]["Code"]
    stage = Stage.of(synth.stack)
    assert stage is not None
    return Path(stage.outdir) / f"asset.{code['S3Key'].removesuffix('.zip')}"


def code_keys(synth: Synthesized) -> set[str]:
    """The code assets of the factory's functions (the Provider framework's relay ships CDK's own code)."""
    return {
        p["Properties"]["Code"]["S3Key"]
        for p in synth.of_type("AWS::Lambda::Function").values()
        if p["Properties"]["Handler"] != PROVIDER_FRAMEWORK_HANDLER
    }


def test_the_code_asset_carries_the_pipeline_configs(main: Synthesized) -> None:
    # Given the code every function deploys
    (key,) = code_keys(main)
    code = code_dir(main, "submit")

    # Then it holds the osbatch package with the stack's configs, as the functions parse them
    deployed = pipelines_from_json((code / "osbatch" / DEPLOYED_PIPELINES_FILE).read_text())
    assert set(deployed) == {"python-docs", "docs"}
    assert deployed["docs"].source.prefix == "input/docs/"
    # And every module of the source, and no bytecode or tests
    source = {p.relative_to(ROOT / "lambdas") for p in (ROOT / "lambdas").rglob("*.py")}
    assert source <= {p.relative_to(code) for p in code.rglob("*.py")}
    assert not list(code.rglob("*.pyc")) and not list(code.rglob("__pycache__"))
    assert key.endswith(".zip")


def test_the_code_asset_changes_with_a_config_and_only_then() -> None:
    # Given two stacks with the same pipelines and one whose index differs
    app = new_app()
    stacks = {
        "same-a": [pipeline()],
        "same-b": [pipeline()],
        "changed": [pipeline(sink={"index": "python-docs-v2"})],
    }
    built = {name: OsbatchStack(app, name, pipelines=configs) for name, configs in stacks.items()}
    keys = {name: code_keys(Synthesized.of(stack)) for name, stack in built.items()}

    # Then equal configs give the same asset (no needless code update) and a changed one a new asset
    assert keys["same-a"] == keys["same-b"]
    assert keys["changed"].isdisjoint(keys["same-a"])


def test_forty_pipelines_synthesize() -> None:
    # Given forty pipelines, each with a sizeable mapping (their JSON is far over Lambda's 4 KB environment)
    big = {
        "settings": {"index.knn": True},
        "mappings": {"properties": {f"field_{i}": {"type": "text"} for i in range(40)}},
    }
    pipelines = [
        pipeline(name=f"p{i}", source={"prefix": f"input/p{i}/"}, sink={"mapping": big}) for i in range(40)
    ]

    # When the stack is synthesized
    stack = OsbatchStack(new_app(), "forty", pipelines=pipelines)
    synthesized = Synthesized.of(stack)

    # Then every pipeline has its rule and every config is in the code asset, none in an environment
    assert len(trigger_rules(synthesized)) == 40
    text = (code_dir(synthesized, "submit") / "osbatch" / DEPLOYED_PIPELINES_FILE).read_text()
    assert len(text.encode()) > 4096
    assert set(pipelines_from_json(text)) == {f"p{i}" for i in range(40)}
    for props in synthesized.of_type("AWS::Lambda::Function").values():
        assert len(json.dumps(props["Properties"]["Environment"])) < 4096


def test_the_layer_is_the_lock_and_its_hash_follows_the_lock(tmp_path: Path, main: Synthesized) -> None:
    # Given the stack's layer, and layers built from two copies of the lock, one with a changed hash line
    lock = ROOT / "requirements" / "lambda.lock"
    same, changed = tmp_path / "same", tmp_path / "changed"
    for directory in (same, changed):
        directory.mkdir()
    (same / "lambda.lock").write_text(lock.read_text())
    (changed / "lambda.lock").write_text(lock.read_text().replace("sha256:", "sha256:0", 1))

    def layer_key(lock_file: Path) -> str:
        stack = Stack(new_app(), "L")
        dependencies_layer(stack, "Layer", lock_file)
        (layer,) = Template.from_stack(stack).find_resources("AWS::Lambda::LayerVersion").values()
        return str(layer["Properties"]["Content"]["S3Key"])

    # Then the stack's layer is built from requirements/lambda.lock, with a hash that is the lock's
    (stack_layer,) = main.of_type("AWS::Lambda::LayerVersion").values()
    assert stack_layer["Properties"]["Content"]["S3Key"] == layer_key(same / "lambda.lock")
    assert stack_layer["Properties"]["Description"].endswith("(lambda.lock)")
    # And any change to the lock, a hash included, makes a new layer
    assert layer_key(changed / "lambda.lock") != layer_key(same / "lambda.lock")
    # And pip installs only what the lock lists, each file checked against its hash
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:"} <= set(INSTALL_OPTIONS)
