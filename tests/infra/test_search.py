"""OpenSearch: grants derived from existing endpoints, or one hardened domain trusting only the functions."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.functions import FUNCTIONS
from infra.search import DOMAIN_NAME_MAX, SearchAccess, domain_name_prefix, domain_of
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
    prefix = domain_name_prefix("Osbatch-Production-EU-West-Pipelines")

    # Then the fixed part leaves room for "-" and the 8-digit stack suffix, is lowercase, starts with a letter
    assert len(prefix) + 1 + 8 <= DOMAIN_NAME_MAX
    assert prefix == prefix.lower() and prefix[0].isalpha()
    assert domain_name_prefix("osbatch") == "osbatch"


def test_a_created_domains_name_changes_with_each_new_stack(created: Synthesized) -> None:
    # Given the created domain's name
    (domain,) = created.of_type("AWS::OpenSearchService::Domain").values()
    name = domain["Properties"]["DomainName"]

    # Then it is the prefix joined to the first group of the stack id's UUID: the domain is retained by
    # `cdk destroy`, and a stack created again under the same name gets a new id, so a free name
    assert name == {
        "Fn::Join": [
            "-",
            [
                "osbatch-created",
                {
                    "Fn::Select": [
                        0,
                        {
                            "Fn::Split": [
                                "-",
                                {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                            ]
                        },
                    ]
                },
            ],
        ]
    }
    assert domain["DeletionPolicy"] == "Retain"


def test_created_domain_is_encrypted_https_only_and_spread_over_three_zones(created: Synthesized) -> None:
    # Given the created domain, in the default (production) shape
    (domain,) = created.of_type("AWS::OpenSearchService::Domain").values()
    props = domain["Properties"]

    # Then data is encrypted at rest and between nodes, and clients must use TLS 1.2 with forward secrecy
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"] == {
        "EnforceHTTPS": True,
        "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10",
    }
    # And three data nodes and three dedicated masters are spread over three zones: losing one keeps quorum
    cluster = props["ClusterConfig"]
    assert (cluster["InstanceCount"], cluster["DedicatedMasterCount"]) == (3, 3)
    assert cluster["DedicatedMasterEnabled"] is True and cluster["DedicatedMasterType"] == "m7g.large.search"
    assert cluster["ZoneAwarenessEnabled"] is True
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 3}
    # And bulk lines cannot name an index other than the one in the (granted) path
    assert props["AdvancedOptions"] == {"rest.action.multi.allow_explicit_index": "false"}
    # And slow and application logs are published, after the log resource policy exists
    assert set(props["LogPublishingOptions"]) == {
        "SEARCH_SLOW_LOGS",
        "INDEX_SLOW_LOGS",
        "ES_APPLICATION_LOGS",
    }
    (log_policy,) = created.of_type("AWS::Logs::ResourcePolicy")
    assert domain["DependsOn"] == [log_policy]
    # And no custom-resource Lambda was added for the access or log policies (only the search provisioning
    # function and its Provider framework relay join the job functions)
    assert len(created.of_type("AWS::Lambda::Function")) == len(FUNCTIONS) + 2


def test_created_domain_policy_mirrors_the_functions_index_grants(created: Synthesized) -> None:
    # Given the domain's access policy
    (domain,) = created.of_type("AWS::OpenSearchService::Domain").values()
    statements = domain["Properties"]["AccessPolicies"]["Statement"]
    search = ("prepare", "plan-ingest", "ingest-chunk", "finalize", "fail-job")
    roles = {name: role_id(created, name) for name in search}
    provisioning = role_id(created, "provision-search")
    # The provisioning role's statements are checked in tests/infra/test_search_provisioning.py
    provisioner = [s for s in statements if provisioning in render(s["Principal"]["AWS"])]
    statements = [s for s in statements if s not in provisioner]
    only_provisioning = [{"Fn::GetAtt": [provisioning, "Arn"]}]
    assert provisioner and all(s["Principal"]["AWS"] == only_provisioning for s in provisioner)

    def granted(name: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for s in statements:
            if s["Principal"]["AWS"]["Fn::GetAtt"][0] == roles[name]:
                # The last part of each ARN is the path under the (token-named) domain
                found.setdefault(s["Action"], []).extend(r["Fn::Join"][1][-1] for r in as_list(s["Resource"]))
        return {action: sorted(paths) for action, paths in found.items()}

    # Then it names exactly the roles of the functions that talk to the cluster
    assert {s["Principal"]["AWS"]["Fn::GetAtt"][0] for s in statements} == set(roles.values())
    # And each may do on the pipeline's index what its IAM policy allows, and no more
    checks = {
        "es:ESHttpPut": ["/python-docs"],
        "es:ESHttpHead": ["/python-docs"],
        "es:ESHttpGet": ["/python-docs/_mapping"],
    }
    load = {  # search/bulk_load.py
        "es:ESHttpGet": ["/python-docs/_count", "/python-docs/_settings"],
        "es:ESHttpPut": ["/python-docs/_settings"],
        "es:ESHttpPost": ["/python-docs/_count", "/python-docs/_refresh"],
    }
    incremental = {  # osbatch/incremental: prepare's fingerprint check, finalize's source sync
        "es:ESHttpPut": ["/python-docs/_mapping"],
        "es:ESHttpGet": ["/python-docs/_mget", "/python-docs/_search"],
        "es:ESHttpPost": [
            "/python-docs/_bulk",
            "/python-docs/_delete_by_query",
            "/python-docs/_mget",
            "/python-docs/_search",
        ],
    }

    def union(*grants: dict[str, list[str]]) -> dict[str, list[str]]:
        return {
            action: sorted({path for grant in grants for path in grant.get(action, [])})
            for action in {action for grant in grants for action in grant}
        }

    assert union(granted("prepare")) == union(checks, incremental)
    assert granted("plan-ingest") == union(checks, load)
    assert granted("ingest-chunk") == {"es:ESHttpPost": ["/python-docs/_bulk"]}
    assert union(granted("finalize")) == union(load, incremental)
    assert granted("fail-job") == load


def test_a_development_domain_may_be_small_and_says_so_to_cdk_nag() -> None:
    # Given a created domain of one data node and no masters, asked for with development: true
    small = {"endpoint": None, "create_domain": True, "development": True}
    config = pipeline(sink={"opensearch": {**small, "instance_count": 1, "dedicated_master_count": 0}})

    # When the stack is built
    stack = OsbatchStack(new_app(), "dev", pipelines=[config])
    (domain,) = Template.from_stack(stack).find_resources("AWS::OpenSearchService::Domain").values()

    # Then it has one node, no masters and no zone awareness
    cluster = domain["Properties"]["ClusterConfig"]
    assert cluster["InstanceCount"] == 1 and cluster["DedicatedMasterEnabled"] is False
    assert cluster["ZoneAwarenessEnabled"] is False


def test_a_production_domain_refuses_the_small_shapes() -> None:
    # Given created domains without the development flag: two data nodes, then no masters
    for shape, field in (
        ({"instance_count": 2}, "instance_count"),
        ({"dedicated_master_count": 0}, "dedicated_master_count"),
    ):
        # When the config is loaded
        with pytest.raises(ConfigError) as error:
            pipeline(sink={"opensearch": {"endpoint": None, "create_domain": True, **shape}})
        # Then the field is named and the development flag offered
        assert f"sink.opensearch: {field}:" in str(error.value) and "development: true" in str(error.value)


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
    # Given a development domain of five nodes
    odd = pipeline(
        sink={
            "opensearch": {"endpoint": None, "create_domain": True, "development": True, "instance_count": 5}
        }
    )

    # When search access is built
    with pytest.raises(ConfigError) as error:
        SearchAccess(cdk.Stack(new_app(), "S"), "Search", pipelines=[odd])

    # Then the error names the field
    assert "sink.opensearch.instance_count" in str(error.value)
