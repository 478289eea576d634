"""The function factory: every function gets the same runtime, logging, tracing, layer and environment."""

from __future__ import annotations

import pytest

from infra.functions import ENV_LIMIT_BYTES, FUNCTIONS, EnvironmentTooLarge, environment_size
from infra.stack import OsbatchStack
from tests.infra.helpers import Synthesized, function_ids, new_app, pipeline, render

DOCUMENTED_HANDLERS = {
    "submit": "osbatch.handlers.submit.handler",
    "prepare": "osbatch.handlers.prepare.handler",
    "start-job": "osbatch.handlers.start_job.handler",
    "poll-job": "osbatch.handlers.poll_job.handler",
    "plan-ingest": "osbatch.handlers.plan_ingest.handler",
    "ingest-chunk": "osbatch.handlers.ingest_chunk.handler",
    "finalize": "osbatch.handlers.finalize.handler",
    "fail-job": "osbatch.handlers.fail_job.handler",
}
COMMON_ENV = {
    "OSBATCH_PIPELINES",
    "JOB_TABLE",
    "INPUT_BUCKET",
    "OUTPUT_BUCKET",
    "DEAD_LETTER_BUCKET",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
}


def test_functions_are_exactly_the_documented_handlers(main: Synthesized) -> None:
    # Given the synthesized functions
    handlers = {p["Properties"]["Handler"] for p in main.of_type("AWS::Lambda::Function").values()}

    # Then there is one per row of docs/architecture.md and no other (no custom-resource helpers)
    assert handlers == set(DOCUMENTED_HANDLERS.values())
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
        assert props["Timeout"] == FUNCTIONS[name].timeout_seconds, name
        assert props["MemorySize"] == FUNCTIONS[name].memory_mb, name


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
    assert {n for n, v in env.items() if "SAGEMAKER_ROLE_ARN" in v} == {"start-job"}
    assert {n for n, v in env.items() if "EVENT_BUS_NAME" in v} == {"finalize", "fail-job"}
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

    # Then prepare, plan-ingest and ingest-chunk get the domain's https endpoint, and no other function does
    with_endpoint = {n for n, v in env.items() if "OPENSEARCH_ENDPOINT" in v}
    assert with_endpoint == {"prepare", "plan-ingest", "ingest-chunk"}
    assert render(env["ingest-chunk"]["OPENSEARCH_ENDPOINT"]) == f"https://<{domain}.DomainEndpoint>"


def test_pipelines_are_serialized_into_the_environment(main: Synthesized) -> None:
    # Given the submit function's OSBATCH_PIPELINES
    variables = main.resources[function_ids(main)["submit"]]["Properties"]["Environment"]["Variables"]

    # Then it is the JSON list the functions parse, with both pipelines
    from osbatch.config import pipelines_from_json

    assert set(pipelines_from_json(variables["OSBATCH_PIPELINES"])) == {"python-docs", "docs"}


def test_too_large_environment_fails_synth_with_a_clear_error() -> None:
    # Given three pipelines with large mappings, whose JSON cannot fit Lambda's 4 KB environment
    big = {
        "settings": {"index.knn": True},
        "mappings": {"properties": {f"field_{i}": {"type": "text"} for i in range(40)}},
    }
    pipelines = [
        pipeline(name=f"p{i}", source={"prefix": f"input/p{i}/"}, sink={"mapping": big}) for i in range(3)
    ]

    # When the stack is built
    with pytest.raises(EnvironmentTooLarge) as error:
        OsbatchStack(new_app(), "too-big", pipelines=pipelines)

    # Then the error names the limit and the variable to shrink
    assert f"{ENV_LIMIT_BYTES}-byte limit" in str(error.value)
    assert "OSBATCH_PIPELINES" in str(error.value)


def test_environment_size_counts_unresolved_tokens_conservatively() -> None:
    # Given a literal and a deploy-time value
    from aws_cdk import Token

    # When sizes are estimated
    literal = environment_size({"KEY": "value"})
    token = environment_size({"KEY": Token.as_string({"Ref": "Bucket"})})

    # Then literals count their bytes and a token counts as a long name or ARN
    assert literal == len("KEY") + len("value")
    assert token == len("KEY") + 128
