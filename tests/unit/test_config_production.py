"""Config checks that keep a production deploy honest: https to AWS domains, a domain that keeps quorum,
polling that grows, and failed chunks that stay visible unless a pipeline says otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from osbatch.config import ConfigError, parse_pipeline
from tests.unit.helpers import pipeline_dict


def _sink(**opensearch: Any) -> dict[str, Any]:
    sink = pipeline_dict()["sink"]
    return {**sink, "opensearch": opensearch}


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://search-logs-abc123.us-east-1.es.amazonaws.com",
        "http://vpc-logs-abc123.eu-west-1.es.amazonaws.com:80",
        "http://x1y2z3.us-east-1.aoss.amazonaws.com",
        "http://search-logs-abc123.cn-north-1.es.amazonaws.com.cn",
    ],
)
def test_an_aws_endpoint_over_plain_http_is_refused(endpoint: str) -> None:
    # Given an AWS domain or collection endpoint with http://, which would go unsigned to port 80
    data = pipeline_dict(sink=_sink(endpoint=endpoint))
    # When the config is loaded
    with pytest.raises(ConfigError) as error:
        parse_pipeline(data, "p.yaml")
    # Then the field is named and https asked for
    assert "p.yaml: sink.opensearch: endpoint: an AWS domain is reached over https only" in str(error.value)


def test_the_local_node_may_use_plain_http() -> None:
    # Given the local runtime's node, and an AWS domain over https
    # When both are loaded / Then both are accepted
    assert parse_pipeline(pipeline_dict()).sink.opensearch.endpoint == "http://127.0.0.1:9200"
    https = "https://search-logs-abc123.us-east-1.es.amazonaws.com"
    assert parse_pipeline(pipeline_dict(sink=_sink(endpoint=https))).sink.opensearch.endpoint == https


def test_a_created_domain_defaults_to_three_nodes_and_three_masters() -> None:
    # Given create_domain with nothing else
    target = parse_pipeline(pipeline_dict(sink=_sink(create_domain=True))).sink.opensearch
    # Then it is the production shape: three data nodes, three dedicated masters, no development flag
    assert (target.instance_count, target.dedicated_master_count, target.development) == (3, 3, False)


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        ({"instance_count": 2}, "instance_count"),
        ({"instance_count": 1}, "instance_count"),
        ({"dedicated_master_count": 0}, "dedicated_master_count"),
        ({"dedicated_master_count": 2}, "dedicated_master_count"),
    ],
)
def test_smaller_domains_need_the_development_flag(shape: dict[str, int], field: str) -> None:
    # Given a created domain that would lose quorum with one node, without development: true
    data = pipeline_dict(sink=_sink(create_domain=True, **shape))
    # When it is loaded
    with pytest.raises(ConfigError) as error:
        parse_pipeline(data, "p.yaml")
    # Then the field is named and the flag offered; with the flag it loads
    assert f"sink.opensearch: {field}:" in str(error.value) and "development: true" in str(error.value)
    parse_pipeline(pipeline_dict(sink=_sink(create_domain=True, development=True, **shape)))


def test_polling_must_grow_towards_its_maximum() -> None:
    # Given a first wait longer than the maximum wait
    polling = {"interval_seconds": 900, "max_interval_seconds": 600}
    data = pipeline_dict(inference={**pipeline_dict()["inference"], "polling": polling})
    # When it is loaded / Then both fields are named
    with pytest.raises(ConfigError, match=r"interval_seconds \(900\) is above max_interval_seconds \(600\)"):
        parse_pipeline(data)


def test_failed_chunks_fail_the_job_unless_the_pipeline_tolerates_some() -> None:
    # Given the default sink, one that tolerates 5 %, and one that asks for more than all of them
    default = parse_pipeline(pipeline_dict()).sink
    five = {**pipeline_dict()["sink"], "tolerated_chunk_failure_percentage": 5}
    tolerant = parse_pipeline(pipeline_dict(sink=five)).sink
    # Then none is tolerated by default, 5 % when asked, and over 100 % is refused
    assert (default.tolerated_chunk_failure_percentage, tolerant.tolerated_chunk_failure_percentage) == (0, 5)
    too_many = {**pipeline_dict()["sink"], "tolerated_chunk_failure_percentage": 101}
    with pytest.raises(ConfigError, match=r"sink\.tolerated_chunk_failure_percentage"):
        parse_pipeline(pipeline_dict(sink=too_many))


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"model_data_url": "https://models/model.tar.gz"}, "model_data_url"),
        ({"kms_key_arn": "alias/models"}, "kms_key_arn"),
        ({"image_accounts": ["76310435188"]}, "image_accounts"),
    ],
)
def test_the_sagemaker_model_access_names_exact_resources(model: dict[str, Any], field: str) -> None:
    # Given a model artifact location, key or image account that is not an exact resource
    inference = {**pipeline_dict()["inference"], "sagemaker_model": model}
    # When it is loaded / Then the field is named (the SageMaker role is granted exactly what is named)
    with pytest.raises(ConfigError, match=rf"inference\.sagemaker_model\.{field}"):
        parse_pipeline(pipeline_dict(inference=inference))
