"""The search side of a pipeline config: the processor page's rules, checked before anything is sent.

OpenSearch, "ML inference search response processor":
https://docs.opensearch.org/latest/search-plugins/search-pipelines/ml-inference-search-response/
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from osbatch.config import ConfigError, load_pipeline, parse_pipeline
from osbatch.search_config import MlInferenceStep, RerankStep
from tests.unit.helpers import REPO, pipeline_dict

MODELS = [
    {"name": "embedder", "task": "text_embedding", "remote": {"sagemaker": {"endpoint": "minilm"}}},
    {"name": "onnx", "task": "text_embedding", "onnx": {}},
    {"name": "llm", "task": "generate", "remote": {"bedrock": {"model": "anthropic.claude"}}},
]


def with_processor(**processor: Any) -> dict[str, Any]:
    processor.setdefault("model", "embedder")
    return pipeline_dict(
        models=MODELS, search_pipelines=[{"name": "p", "response_processors": [{"ml_inference": processor}]}]
    )


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        parse_pipeline(data)
    return str(error.value)


def test_every_documented_example_parses() -> None:
    # Given the integration config, which holds the processor page's four examples
    config = load_pipeline(REPO / "tests" / "integration" / "pipelines" / "search.yaml")
    # Then all of them validate, and the rerank written in one entry with ml_inference becomes its own step
    names = [pipeline.name for pipeline in config.search_pipelines]
    assert names[:4] == [
        "ml-inference-remote-embedding",
        "ml-inference-local-embedding",
        "review-llm",
        "diary-rerank",
    ]
    steps = config.search_pipelines[3].response_processors
    assert [type(step) for step in steps] == [MlInferenceStep, RerankStep]


def test_body_resolves_model_names_and_keeps_every_parameter() -> None:
    # Given a processor naming its model, with model_config and the flags set
    data = with_processor(
        input_map=[{"input": "passage_text"}],
        output_map=[{"passage_embedding": "data"}],
        model_config={"k": 1},
        override=True,
        ignore_failure=True,
        max_prediction_tasks=3,
        tag="t",
    )
    config = parse_pipeline(data)
    # When the search pipeline body is built with the registered ids
    body = config.search_pipelines[0].body({"embedder": "ID1"})
    # Then the model is its id and nothing of the config is lost
    processor = body["response_processors"][0]["ml_inference"]
    assert processor["model_id"] == "ID1" and "model" not in processor
    assert processor["model_config"] == {"k": 1}
    assert (processor["override"], processor["ignore_failure"], processor["max_prediction_tasks"]) == (
        True,
        True,
        3,
    )
    assert processor["tag"] == "t"


@pytest.mark.parametrize(
    ("processor", "message"),
    [
        (
            {"input_map": [{"a": "x"}, {"b": "y"}], "output_map": [{"c": "data"}]},
            "input_map has 2 entries and output_map 1",
        ),
        (
            {"one_to_one": True, "input_map": [{"a": "x"}], "output_map": [{"ext.ml_inference.s": "r"}]},
            "which one_to_one does not allow",
        ),
        ({"input_map": [{"a": "x"}], "output_map": [{"ext.summary": "r"}]}, "only ext.ml_inference.<name>"),
        ({"input_map": [{"a": "$._request.query[["}], "output_map": [{"b": "c"}]}, "not a valid JSONPath"),
        ({"input_map": [{"a": "request.query"}], "output_map": [{"b": "c"}]}, "starts with _request."),
        ({"function_name": "text_embedding", "model": "onnx"}, "it needs model_input"),
        ({"function_name": "classify"}, "function_name 'classify' is not one of"),
        (
            {"model_input": "{${input_map.missing}}", "input_map": [{"a": "x"}]},
            "no input_map entry has 'missing'",
        ),
        ({"model_input": "{${model_config.k}}"}, "model_config has no 'k'"),
        ({"input_map": [{"a": "x"}, {"b": "y"}], "max_prediction_tasks": 1}, "over max_prediction_tasks 1"),
        ({"model_id": "abc"}, "set exactly one of 'model'"),
        ({"input_map": [{}]}, "entry 0 is empty"),
    ],
)
def test_a_processor_breaking_a_documented_rule_is_refused_with_the_reason(
    processor: dict[str, Any], message: str
) -> None:
    # Given a processor that breaks one rule / When the config is parsed / Then the error says which
    assert message in error_of(with_processor(**processor))


def test_a_model_name_that_is_not_defined_is_refused() -> None:
    assert "model 'nope' is not in models: (known: embedder, llm, onnx)" in error_of(
        with_processor(model="nope")
    )


def test_function_name_must_match_the_model_kind() -> None:
    # Given a local-model processor pointing at a remote model
    data = with_processor(function_name="text_embedding", model_input="{}", model="embedder")
    # Then the mismatch is named
    assert (
        "model 'embedder' is a remote model, but the processor says function_name text_embedding"
        in error_of(data)
    )


def test_remote_is_read_case_insensitively_as_the_processor_page_writes_it() -> None:
    config = parse_pipeline(with_processor(function_name="REMOTE"))
    step = config.search_pipelines[0].response_processors[0]
    assert isinstance(step, MlInferenceStep) and step.ml_inference.function_name == "remote"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"name": "m", "task": "text_embedding"}, "set exactly one of 'remote' or 'onnx'"),
        ({"name": "m", "task": "generate", "onnx": {}}, "an onnx model can only do task text_embedding"),
        (
            {"name": "m", "task": "text_similarity", "remote": {"bedrock": {"model": "x"}}},
            "text_similarity connects to a SageMaker",
        ),
        (
            {"name": "m", "task": "generate", "remote": {"sagemaker": {"endpoint": "x"}}},
            "connects to a Bedrock",
        ),
    ],
)
def test_invalid_models_are_refused(model: dict[str, Any], message: str) -> None:
    assert message in error_of(pipeline_dict(models=[model]))


def test_query_model_must_be_an_embedding_model() -> None:
    data = pipeline_dict(models=MODELS, search={"query_model": "llm"})
    assert "search.query_model: 'llm' is not a text_embedding model" in error_of(data)


def test_hybrid_weights_must_add_up_to_one() -> None:
    assert "must be non-negative and add up to 1" in error_of(
        pipeline_dict(search={"hybrid": {"weights": [0.5, 0.6]}})
    )


def test_the_search_side_stays_out_of_the_lambda_environment() -> None:
    # Given a config with models and search pipelines
    config = parse_pipeline(with_processor())
    # When it is serialized for the job functions
    serialized = json.loads(config.to_json())
    # Then none of the search side is there (no job function reads it), and it still parses
    assert not {"models", "search", "search_pipelines"} & set(serialized)
    assert parse_pipeline(serialized).name == config.name


TITAN_BATCH = {
    "backend": "bedrock",
    "bedrock": {
        "model_id": "amazon.titan-embed-text-v2:0",
        "family": "titan-embed-text-v2",
        "dimensions": 512,
    },
}


@pytest.mark.parametrize(("query_size", "refused"), [(None, True), (1024, True), (512, False)])
def test_a_titan_query_model_answers_in_the_batch_jobs_size(query_size: int | None, refused: bool) -> None:
    # Given a Bedrock pipeline embedding in 512 dimensions and a Titan query model of another or the same size
    bedrock = {"model": "amazon.titan-embed-text-v2:0", **({"dimensions": query_size} if query_size else {})}
    model = {"name": "titan", "task": "text_embedding", "remote": {"bedrock": bedrock}}
    data = pipeline_dict(inference=TITAN_BATCH, models=[model], search={"query_model": "titan"})
    # Then a query model whose vectors would not fit the index is refused, naming the size to set
    if refused:
        assert "set its bedrock.dimensions: 512" in error_of(data)
    else:
        assert parse_pipeline(data).search.query_model == "titan"
