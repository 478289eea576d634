"""OpenSearch: grants derived from existing endpoints, or one hardened domain trusting only the functions."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from infra.search import DOMAIN_NAME_MAX, SearchAccess, domain_name_for, domain_of
from infra.stack import OsbatchStack
from osbatch.config import ConfigError
from tests.infra.helpers import CREATED, Synthesized, as_list, new_app, pipeline, render, role_id


def test_domain_is_derived_from_a_managed_endpoint() -> None:
    # Given public and VPC domain endpoints
    # When their domain and region are derived
    # Then the random id is dropped and hyphens in the domain name survive
    assert domain_of("https://search-my-domain-abc123.us-east-1.es.amazonaws.com", "p") == (
        "my-domain",
        "us-east-1",
    )
    assert domain_of("https://vpc-logs-7xq2.eu-west-1.es.amazonaws.com/", "p") == ("logs", "eu-west-1")


def test_an_endpoint_without_a_domain_fails_with_the_field_named() -> None:
    # Given an endpoint that is not an OpenSearch Service domain
    # When its domain is derived
    with pytest.raises(ConfigError) as error:
        domain_of("http://localhost:9200", "pipeline 'local'")

    # Then the error names the pipeline and the field, and says what would work
    assert "pipeline 'local': sink.opensearch.endpoint" in str(error.value)
    assert "create_domain" in str(error.value)


def test_domain_names_are_valid_for_long_stack_names() -> None:
    # Given a long stack name
    name = domain_name_for("Osbatch-Production-EU-West-Pipelines")

    # Then the domain name is short, lowercase and starts with a letter
    assert len(name) <= DOMAIN_NAME_MAX
    assert name == name.lower() and name[0].isalpha()
    assert domain_name_for("osbatch") == "osbatch-search"


def test_created_domain_is_encrypted_https_only_and_zone_aware(created: Synthesized) -> None:
    # Given the created domain
    (domain,) = created.of_type("AWS::OpenSearchService::Domain").values()
    props = domain["Properties"]

    # Then data is encrypted at rest and between nodes, and clients must use TLS 1.2
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"] == {
        "EnforceHTTPS": True,
        "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
    }
    # And two nodes are spread over two zones
    assert props["ClusterConfig"]["InstanceCount"] == 2
    assert props["ClusterConfig"]["ZoneAwarenessEnabled"] is True
    assert props["ClusterConfig"]["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 2}
    # And slow and application logs are published, after the log resource policy exists
    assert set(props["LogPublishingOptions"]) == {
        "SEARCH_SLOW_LOGS",
        "INDEX_SLOW_LOGS",
        "ES_APPLICATION_LOGS",
    }
    (log_policy,) = created.of_type("AWS::Logs::ResourcePolicy")
    assert domain["DependsOn"] == [log_policy]
    # And no custom-resource Lambda was added for the access or log policies
    assert len(created.of_type("AWS::Lambda::Function")) == 8


def test_created_domain_trusts_only_the_search_functions(created: Synthesized) -> None:
    # Given the domain's access policy
    (domain,) = created.of_type("AWS::OpenSearchService::Domain").values()
    (statement,) = domain["Properties"]["AccessPolicies"]["Statement"]

    # Then it allows HTTP access for exactly the roles of the functions that talk to the cluster
    principals = {p["Fn::GetAtt"][0] for p in statement["Principal"]["AWS"]}
    search = ("prepare", "plan-ingest", "ingest-chunk", "finalize", "fail-job")
    assert principals == {role_id(created, n) for n in search}
    assert not [a for a in as_list(statement["Action"]) if a.endswith("*")]
    assert render(statement["Resource"]).endswith(":domain/osbatch-created-search/*")


def test_a_created_domain_cannot_share_a_stack_with_existing_ones() -> None:
    # Given one pipeline that creates a domain and one that names an existing one
    pipelines = [pipeline(**CREATED), pipeline(name="other", source={"prefix": "input/other/"})]

    # When the stack is built
    with pytest.raises(ConfigError) as error:
        OsbatchStack(new_app(), "mixed", pipelines=pipelines)

    # Then the error says why (the endpoint override would redirect the other pipeline) and names both
    assert (
        "create_domain" in str(error.value)
        and "'python-docs'" in str(error.value)
        and "'other'" in str(error.value)
    )


def test_odd_node_counts_that_cannot_spread_over_zones_are_rejected() -> None:
    # Given a created domain of five nodes
    odd = pipeline(sink={"opensearch": {"endpoint": None, "create_domain": True, "instance_count": 5}})

    # When search access is built
    with pytest.raises(ConfigError) as error:
        SearchAccess(cdk.Stack(new_app(), "S"), "Search", pipelines=[odd])

    # Then the error names the field
    assert "sink.opensearch.instance_count" in str(error.value)
