"""source.chunking: text_chunking's algorithms and parameters, validated with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from osbatch.chunking import TokenizerName
from osbatch.config import ConfigError, load_pipeline, parse_pipeline, pipelines_from_json, pipelines_to_json
from tests.unit.helpers import REPO, chunking_pipeline_dict, pipeline_dict


def with_chunking(chunking: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return chunking_pipeline_dict(chunking, **overrides)


def bedrock(chunking: dict[str, Any]) -> dict[str, Any]:
    data = with_chunking(chunking)
    data["inference"] = {
        "backend": "bedrock",
        "bedrock": {"model_id": "amazon.titan-embed-text-v2:0", "family": "titan-embed-text-v2"},
    }
    return data


def test_existing_configs_do_not_chunk() -> None:
    # Given a config without a chunking section
    config = parse_pipeline(pipeline_dict())
    # Then records go to the model whole, as before
    assert config.source.chunking is None
    assert config.chunking_tokenizer is None


def test_a_chain_parses_and_counts_with_minilm_on_sagemaker() -> None:
    # Given delimiter then fixed_token_length on the sagemaker backend
    data = with_chunking(
        {"algorithms": [{"delimiter": {}}, {"fixed_token_length": {"token_limit": 200, "overlap_rate": 0.5}}]}
    )
    # When parsed
    config = parse_pipeline(data)
    # Then text_chunking's defaults fill in and the model's own tokenizer counts
    chunking = config.source.chunking
    assert chunking is not None
    delimiter, fixed = (step.algorithm for step in chunking.algorithms)
    assert delimiter.model_dump() == {"delimiter": "\n\n", "max_chunk_limit": 100}
    assert fixed.model_dump() == {"token_limit": 200, "overlap_rate": 0.5, "max_chunk_limit": 100}
    assert config.chunking_tokenizer is TokenizerName.MINILM
    assert chunking.on_max_chunk_limit == "dead_letter"


def test_an_empty_chunking_section_means_fixed_token_length_with_its_defaults() -> None:
    config = parse_pipeline(with_chunking({}))
    assert config.source.chunking is not None
    assert [step.fixed_token_length for step in config.source.chunking.algorithms] == [
        config.source.chunking.algorithms[0].fixed_token_length
    ]
    assert config.source.chunking.token_limits == [None]  # 384, or less where the model reads less


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        (
            {"fixed_token_length": {"overlap_rate": 0.6}},
            "source.chunking.algorithms.0.fixed_token_length.overlap_rate: "
            "Input should be less than or equal to 0.5",
        ),
        (
            {"fixed_token_length": {"token_limit": 0}},
            "source.chunking.algorithms.0.fixed_token_length.token_limit: "
            "Input should be greater than or equal to 1",
        ),
        (
            {"fixed_token_length": {"max_chunk_limit": 0}},
            "source.chunking.algorithms.0.fixed_token_length.max_chunk_limit: "
            "Input should be greater than or equal to 1",
        ),
        ({"semantic": {}}, "source.chunking.algorithms.0.semantic: unknown field (check the spelling)"),
        (
            {"delimiter": {"delimiter": ""}},
            "source.chunking.algorithms.0.delimiter.delimiter: String should have",
        ),
        (
            {"delimiter": {}, "fixed_token_length": {}},
            "source.chunking.algorithms.0: each chunking step names one algorithm: fixed_token_length or "
            "delimiter (got fixed_token_length, delimiter)",
        ),
    ],
)
def test_a_wrong_parameter_fails_validation_naming_the_field(algorithm: dict[str, Any], message: str) -> None:
    # Given one wrong chunking step
    data = with_chunking({"algorithms": [algorithm]})
    # When parsed
    with pytest.raises(ConfigError) as error:
        parse_pipeline(data, "pipelines/x.yaml")
    # Then the error names the file and the field
    assert str(error.value).startswith(f"pipelines/x.yaml: {message}")


def test_an_unknown_tokenizer_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"source\.chunking\.tokenizer: Input should be 'all-MiniLM-L6-v2' or"
    ):
        parse_pipeline(with_chunking({"tokenizer": "gpt2"}))


def test_a_token_limit_over_what_minilm_reads_is_refused() -> None:
    # Given text_chunking's default of 384 written out, on a MiniLM pipeline
    data = with_chunking({"algorithms": [{"fixed_token_length": {"token_limit": 384}}]})
    # When parsed
    with pytest.raises(ConfigError) as error:
        parse_pipeline(data)
    # Then the error says the model's limit
    assert str(error.value) == (
        "pipeline config: source.chunking.algorithms.0.fixed_token_length.token_limit: 384 is over the 254 "
        "tokens all-MiniLM-L6-v2 passages may hold; use at most 254"
    )


def test_delimiters_alone_are_refused_for_minilm_which_would_ignore_long_passages_ends() -> None:
    with pytest.raises(ConfigError, match=r"source\.chunking\.algorithms: add a fixed_token_length step"):
        parse_pipeline(with_chunking({"algorithms": [{"delimiter": {}}]}))


def test_bedrock_counts_utf8_bytes_and_may_split_on_delimiters_alone() -> None:
    # Given Titan, whose tokenizer osbatch does not have
    config = parse_pipeline(bedrock({"algorithms": [{"delimiter": {"delimiter": "\n"}}]}))
    # Then the byte upper bound applies, and delimiters alone are allowed (Titan refuses what is too long)
    assert config.chunking_tokenizer is TokenizerName.UTF8_BYTES


def test_bedrock_refuses_a_token_limit_over_its_models_limit() -> None:
    with pytest.raises(ConfigError, match=r"token_limit: 9000 is over the 8000 tokens utf8-bytes passages"):
        parse_pipeline(bedrock({"algorithms": [{"fixed_token_length": {"token_limit": 9000}}]}))


def test_chunking_survives_the_deployed_json() -> None:
    # Given a chunking config, as synth writes it for the functions
    config = parse_pipeline(
        with_chunking(
            {
                "algorithms": [
                    {"delimiter": {"delimiter": "\n"}},
                    {"fixed_token_length": {"overlap_rate": 0.1}},
                ],
                "on_max_chunk_limit": "append_to_last_chunk",
            }
        )
    )
    # When it is serialized and read back
    restored = pipelines_from_json(pipelines_to_json([config]))[config.name]
    # Then it is the same config
    assert restored.source.chunking == config.source.chunking


def test_the_long_documents_pipeline_chunks_with_minilm() -> None:
    config = load_pipeline(REPO / "pipelines" / "python-modules.yaml")
    assert config.chunking_tokenizer is TokenizerName.MINILM
    assert config.source.chunking is not None
    assert config.source.chunking.token_limits == [128]


def test_a_chunking_pipeline_without_a_nested_knn_vector_is_refused_with_the_field_named() -> None:
    # Given a chunking pipeline whose mapping has a top-level vector only (the unchunked layout)
    data = pipeline_dict()
    data["source"]["chunking"] = {}
    data["sink"]["mapping"] = {"mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 3}}}}
    # Then validation says where the passages would go and that none was found
    with pytest.raises(ConfigError, match=r"sink\.mapping\.mappings\.properties: .*`nested`.*found none"):
        parse_pipeline(data)


def test_a_chunking_pipeline_may_not_map_its_passages_field_itself() -> None:
    data = with_chunking({})
    data["sink"]["field_map"] = {"_id": "$._id", "passages": "$.text"}
    with pytest.raises(
        ConfigError, match=r"sink\.field_map\.passages: the nested field 'passages' is filled"
    ):
        parse_pipeline(data)


def test_a_chunking_pipeline_needs_a_text_path_of_field_names() -> None:
    data = with_chunking({})
    data["source"]["text_path"] = "$..text"
    with pytest.raises(ConfigError, match=r"source\.text_path: '\$\.\.text' must be a path of field names"):
        parse_pipeline(data)
