from __future__ import annotations

import pytest

from osbatch.config import (
    ConfigError,
    load_pipeline,
    parse_duration,
    parse_pipeline,
    pipelines_from_json,
    pipelines_to_json,
)
from tests.unit.helpers import example_pipeline_files, pipeline_dict


def test_a_valid_config_parses_with_defaults() -> None:
    # Given a minimal SageMaker pipeline
    data = pipeline_dict()
    # When it is parsed
    config = parse_pipeline(data)
    # Then defaults fill in the job settings of AWS's SageMaker batch connector blueprint
    assert config.inference.sagemaker is not None
    assert config.inference.sagemaker.DataProcessing["JoinSource"] == "Input"
    assert config.inference.retry_time_window_seconds == 7200
    assert config.source.id_path == "$._id"


def test_an_unknown_field_is_named_in_the_error() -> None:
    # Given a typo in the source section
    data = pipeline_dict(source={"prefix": "in/", "sufix": ".jsonl"})
    # When it is parsed
    with pytest.raises(ConfigError) as error:
        parse_pipeline(data, "pipelines/x.yaml")
    # Then the one error names the file, the field and what is wrong
    assert str(error.value) == "pipelines/x.yaml: source.sufix: unknown field (check the spelling)"


def test_an_invalid_jsonpath_in_field_map_is_rejected() -> None:
    # Given a field_map path that is not JSONPath
    data = pipeline_dict()
    data["sink"]["field_map"] = {"vector": "SageMakerOutput"}
    # When / Then
    with pytest.raises(
        ConfigError, match=r"^pipeline config: sink\.field_map\.vector: 'SageMakerOutput' is not a JSONPath"
    ):
        parse_pipeline(data)


def test_sagemaker_backend_requires_its_section() -> None:
    # Given a sagemaker backend with no sagemaker settings
    data = pipeline_dict()
    del data["inference"]["sagemaker"]
    # When / Then
    with pytest.raises(ConfigError, match=r"needs an 'inference\.sagemaker' section"):
        parse_pipeline(data)


def test_line_framing_is_enforced() -> None:
    # Given a transform that would not split by line
    data = pipeline_dict()
    data["inference"]["sagemaker"]["TransformInput"] = {"SplitType": "None"}
    # When / Then
    with pytest.raises(ConfigError, match="SplitType must be 'Line'"):
        parse_pipeline(data)


@pytest.mark.parametrize(
    ("text", "seconds"), [("PT9M", 540), ("2h", 7200), ("1h30m", 5400), ("90", 90), ("15s", 15)]
)
def test_durations_accept_iso8601_and_short_forms(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_explained() -> None:
    with pytest.raises(ConfigError, match="'soon' is not a duration"):
        parse_pipeline(pipeline_dict(inference={**pipeline_dict()["inference"], "retry_time_window": "soon"}))


def test_configs_round_trip_through_the_lambda_environment_format() -> None:
    # Given a parsed config
    config = parse_pipeline(pipeline_dict())
    # When it is serialized for Lambda and read back
    restored = pipelines_from_json(pipelines_to_json([config]))
    # Then nothing changed
    assert restored == {"msmarco": config}


@pytest.mark.parametrize("path", example_pipeline_files(), ids=lambda path: path.name)
def test_every_example_pipeline_is_valid(path) -> None:  # type: ignore[no-untyped-def]
    # Given an example shipped in pipelines/ / When it is loaded / Then it validates
    assert load_pipeline(path).name


def test_a_missing_file_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="no such pipeline config"):
        load_pipeline(tmp_path / "nope.yaml")


def test_bedrock_backend_requires_its_section_and_a_prompt_slot() -> None:
    # Given a bedrock backend without settings, and one whose prompt has no place for the text
    missing = pipeline_dict()
    missing["inference"] = {"backend": "bedrock"}
    no_slot = pipeline_dict()
    no_slot["inference"] = {
        "backend": "bedrock",
        "bedrock": {"model_id": "anthropic.claude-3-haiku", "family": "anthropic-messages", "prompt": "Hi"},
    }
    # When / Then each is rejected, naming what is missing
    with pytest.raises(ConfigError, match=r"needs an 'inference\.bedrock' section"):
        parse_pipeline(missing)
    with pytest.raises(ConfigError, match=r"inference\.bedrock\.prompt: prompt must contain \{text\}"):
        parse_pipeline(no_slot)


def test_bulk_requests_default_inside_the_aws_range_and_under_the_cap() -> None:
    # Given a config without bulk settings
    bulk = parse_pipeline(pipeline_dict()).sink.bulk
    # Then requests target 5-15 MiB, under the 10 MiB cap of the smallest domains, with bounded concurrency
    assert 5 * 2**20 <= bulk.max_bytes <= min(15 * 2**20, bulk.max_request_bytes) == 10 * 2**20
    assert bulk.concurrency >= 1


def test_a_bulk_size_over_the_request_cap_is_refused() -> None:
    # Given bulk requests larger than the domain's cap
    data = pipeline_dict()
    data["sink"]["bulk"] = {"max_bytes": 12 * 2**20, "max_request_bytes": 10 * 2**20}
    # When it is parsed, then the error says why
    with pytest.raises(ConfigError, match="over max_request_bytes"):
        parse_pipeline(data)


def test_bedrock_quotas_leave_room_to_rebalance_the_last_job() -> None:
    # Given Bedrock quotas whose maximum per job is under twice the minimum
    bedrock = {
        "model_id": "amazon.titan-embed-text-v2:0",
        "family": "titan-embed-text-v2",
        "quotas": {"min_records_per_job": 100, "max_records_per_job": 150},
    }
    data = pipeline_dict(inference={"backend": "bedrock", "bedrock": bedrock})
    # When parsed / Then the error names both quotas: Prepare could not keep two jobs at the minimum
    with pytest.raises(ConfigError, match=r"max_records_per_job \(150\) must be at least twice"):
        parse_pipeline(data)


def test_remote_jobs_per_upload_are_bounded() -> None:
    # Given a pipeline asking for more remote jobs per upload than the workflow's history can hold
    data = pipeline_dict()
    data["inference"]["max_remote_jobs"] = 501
    # When parsed / Then the field is named
    with pytest.raises(ConfigError, match=r"inference\.max_remote_jobs"):
        parse_pipeline(data)
    # And the default is 100
    assert parse_pipeline(pipeline_dict()).inference.max_remote_jobs == 100


def _openai_pipeline(api_base: str) -> dict:  # type: ignore[type-arg]
    data = pipeline_dict()
    data["inference"] = {
        "backend": "openai",
        "openai": {"api_base": api_base, "api_key_secret": "openai-key", "model": "text-embedding-3-small"},
    }
    return data


@pytest.mark.parametrize(
    "api_base", ["http://api.openai.com/v1", "http://10.0.0.5:8080/v1", "http://proxy.internal/v1"]
)
def test_openai_over_plain_http_to_another_host_is_refused_saying_why(api_base: str) -> None:
    # Given an OpenAI api_base over http:// on a host that is not this machine
    # When the config is loaded
    # Then it is refused: the bearer key would cross the network in cleartext
    with pytest.raises(ConfigError, match=r"inference\.openai\.api_base: .*cleartext"):
        parse_pipeline(_openai_pipeline(api_base))


@pytest.mark.parametrize(
    "api_base",
    [
        "https://api.openai.com/v1",
        "http://127.0.0.1:4610/v1",
        "http://localhost:4610/v1",
        "http://[::1]:4610/v1",
    ],
)
def test_openai_over_https_or_to_a_loopback_emulator_is_accepted(api_base: str) -> None:
    # Given https anywhere, or http to a loopback host (the local OpenAI emulator)
    # When the config is loaded / Then it is accepted as given
    config = parse_pipeline(_openai_pipeline(api_base))
    assert config.inference.openai is not None and config.inference.openai.api_base == api_base
