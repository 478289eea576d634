"""Hygiene of a production stack: tags everywhere, data that outlives `cdk destroy`, bounded concurrency."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.functions import FUNCTIONS
from infra.stack import OsbatchStack
from infra.tags import tags_from_context
from osbatch.config import ConfigError
from osbatch.search.custom_resource import RESOURCE_TYPE
from tests.infra.helpers import Synthesized, function_ids, new_app, pipeline, trigger_rules

# Types whose CloudFormation schema has no Tags property, or that CDK's tag aspect does not reach.
UNTAGGABLE = {
    "AWS::IAM::Policy", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription", "AWS::Lambda::EventSourceMapping", "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard", "AWS::Logs::ResourcePolicy", "AWS::Lambda::LayerVersion",
    "AWS::CDK::Metadata", "AWS::Lambda::Permission",
    RESOURCE_TYPE,  # a custom resource's properties are its handler's input; CloudFormation tags none
}  # fmt: skip


def _tags(resource: dict[str, Any]) -> dict[str, Any]:
    tags = resource.get("Properties", {}).get("Tags", [])
    return tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}


@pytest.fixture(scope="module")
def tagged() -> Synthesized:
    # Given a stack deployed with an account's required tags
    stack = OsbatchStack(
        new_app(), "tagged", pipelines=[pipeline()], resource_tags={"cost-center": "search", "owner": "ml"}
    )
    return Synthesized.of(stack)


def test_every_taggable_resource_carries_the_stack_and_the_required_tags(tagged: Synthesized) -> None:
    for logical_id, resource in tagged.resources.items():
        if resource["Type"] in UNTAGGABLE:
            continue
        # Then each taggable resource names its stack and carries the account's tags
        tags = _tags(resource)
        assert tags.get("osbatch:stack") == "tagged", (logical_id, resource["Type"])
        assert (tags.get("cost-center"), tags.get("owner")) == ("search", "ml"), logical_id


def test_a_pipelines_own_resources_carry_its_name(main: Synthesized) -> None:
    # Given the two pipelines' EventBridge rules (S3 events; the wake rules serve every pipeline)
    rules = trigger_rules(main).values()
    # Then each names its pipeline
    assert sorted(_tags(rule)["osbatch:pipeline"] for rule in rules) == ["docs", "python-docs"]


def test_tags_from_context_are_checked() -> None:
    # Given tags as `-c tags='{...}'` passes them, and as cdk.json holds them
    assert tags_from_context('{"cost-center": "search"}') == {"cost-center": "search"}
    assert tags_from_context({"owner": "ml"}) == {"owner": "ml"} and tags_from_context(None) == {}
    # Then what is not an object of strings, or uses AWS's prefix, is refused with the key named
    for raw, message in (("cost-center", "not a JSON object"), ('{"n": 1}', "string keys and values")):
        with pytest.raises(ConfigError, match=message):
            tags_from_context(raw)
    with pytest.raises(ConfigError, match="'aws:' are AWS's own"):
        tags_from_context({"aws:cloudformation:x": "y"})


def test_job_history_and_undelivered_events_outlive_the_stack(main: Synthesized) -> None:
    # Given the job table and the submit DLQ
    (table,) = main.of_type("AWS::DynamoDB::Table").values()
    (dlq,) = [q for k, q in main.of_type("AWS::SQS::Queue").items() if "SubmitDlq" in k]
    # Then the table is retained and protected from deletion, and the DLQ is retained
    assert table["DeletionPolicy"] == "Retain" and table["Properties"]["DeletionProtectionEnabled"] is True
    assert dlq["DeletionPolicy"] == "Retain" and dlq["UpdateReplacePolicy"] == "Retain"


def test_every_function_reserves_its_concurrency(main: Synthesized) -> None:
    # Given the functions
    reserved = {
        name: main.resources[logical_id]["Properties"]["ReservedConcurrentExecutions"]
        for name, logical_id in function_ids(main).items()
        if name in FUNCTIONS  # search provisioning runs once per deploy and reserves nothing
    }
    # Then each reserves what its spec says, but ingest-chunk: each of the two pipelines' domains takes 4
    # uploads' Distributed Maps of 8 (max_jobs_in_flight 4), 64 in all, 129 for every function
    specs = {name: spec.reserved_concurrency for name, spec in FUNCTIONS.items()}
    assert reserved == {**specs, "ingest-chunk": 2 * 4 * 8}
    assert sum(reserved.values()) == 129


def test_the_submit_queue_drives_fewer_batches_than_submit_reserves(main: Synthesized) -> None:
    # Given the event source mapping and submit's reservation
    (mapping,) = main.of_type("AWS::Lambda::EventSourceMapping").values()
    submit = main.resources[function_ids(main)["submit"]]["Properties"]
    # Then its maximum concurrency stays under the reservation, so SQS batches are not throttled
    maximum = mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    assert maximum == 5 and maximum < submit["ReservedConcurrentExecutions"]


def test_reservations_can_be_dropped_for_small_accounts() -> None:
    # Given a stack built with reserved_concurrency false (an account with a small concurrency quota)
    stack = OsbatchStack(new_app(), "small", pipelines=[pipeline()], reserve_concurrency=False)
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    # Then no function reserves any
    assert functions and not [
        f for f in functions.values() if "ReservedConcurrentExecutions" in f["Properties"]
    ]
