"""Intrinsic functions, conditions and parameters of the local CloudFormation loader (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.cfn_loader.deploy import LOCAL_BOOTSTRAP_VERSION, StackReferences, stack_parameters
from local.aws.cfn_loader.intrinsics import Resolver, TemplateError, pseudo_parameters

BUCKET_ARN = "arn:aws:s3:::in-bucket"
MACHINE_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:jobs"


class FakeReferences:
    def __init__(self) -> None:
        self.refs = {"Bucket": "in-bucket", "Machine": MACHINE_ARN}
        self.attributes = {("Bucket", "Arn"): BUCKET_ARN, ("Queue", "QueueName"): "submit"}

    def ref(self, logical_id: str) -> Any:
        return self.refs[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.attributes[(logical_id, attribute)]


def resolver(**template: Any) -> Resolver:
    pseudo = pseudo_parameters(account_id="123456789012", region="eu-west-1", stack_name="S", stack_id="id")
    return Resolver(template, parameters={"Stage": "dev"}, pseudo=pseudo, references=FakeReferences())


def test_ref_and_getatt_reach_parameters_pseudo_parameters_and_resources() -> None:
    # Given a resolver with a parameter, pseudo parameters and two deployed resources
    r = resolver()
    # When refs and both Fn::GetAtt forms are resolved
    refs = [{"Ref": "Stage"}, {"Ref": "AWS::Region"}, {"Ref": "Bucket"}]
    values = r.resolve([*refs, {"Fn::GetAtt": ["Bucket", "Arn"]}, {"Fn::GetAtt": "Queue.QueueName"}])
    # Then each comes from the right source
    assert values == ["dev", "eu-west-1", "in-bucket", BUCKET_ARN, "submit"]


def test_sub_replaces_parameters_attributes_local_variables_and_keeps_escapes() -> None:
    # Given Fn::Sub in both forms
    r = resolver()
    # When they are resolved
    short = r.resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/${Stage}/*"})
    long = r.resolve({"Fn::Sub": ["${Arn}|${Bucket.Arn}|${!Literal}", {"Arn": {"Ref": "Machine"}}]})
    # Then names, dotted attributes and local variables are replaced; ${!x} becomes ${x}
    assert short == "arn:aws:s3:::in-bucket/dev/*"
    assert long == f"{MACHINE_ARN}|{BUCKET_ARN}|${{Literal}}"


def test_join_select_split_take_apart_an_arn_like_cdk_does() -> None:
    # Given CDK's way of getting a state machine's name out of its ARN
    r = resolver()
    name = {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "Machine"}]}]}
    # When it is joined into an execution ARN
    arn = r.resolve(
        {"Fn::Join": ["", ["arn:aws:states:", {"Ref": "AWS::Region"}, ":execution:", name, ":*"]]}
    )
    # Then the pieces land in place
    assert arn == "arn:aws:states:eu-west-1:execution:jobs:*"


def test_conditions_drive_fn_if_and_no_value_drops_keys_and_items() -> None:
    # Given conditions built from Equals, Not, And, Or and Condition references
    r = resolver(
        Conditions={
            "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
            "IsProd": {"Fn::Not": [{"Condition": "IsDev"}]},
            "DevInEurope": {
                "Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["eu-west-1", {"Ref": "AWS::Region"}]}]
            },
            "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "DevInEurope"}]},
        }
    )
    # When Fn::If picks values, some of them AWS::NoValue
    value = r.resolve(
        {
            "Retention": {"Fn::If": ["IsProd", 30, {"Ref": "AWS::NoValue"}]},
            "Size": {"Fn::If": ["Either", "small", "large"]},
            "Tags": ["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}],
        }
    )
    # Then the chosen branches remain and NoValue vanishes from objects and lists
    assert value == {"Size": "small", "Tags": ["a"]}
    assert (r.condition("IsDev"), r.condition("IsProd"), r.condition("DevInEurope")) == (True, False, True)


def test_find_in_map_base64_and_to_json_string() -> None:
    # Given a mapping
    r = resolver(Mappings={"Sizes": {"dev": {"Memory": 512}}})
    # When the functions are resolved
    memory = r.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]})
    fallback = r.resolve({"Fn::FindInMap": ["Sizes", "prod", "Memory", {"DefaultValue": 128}]})
    encoded = r.resolve({"Fn::Base64": {"Fn::Sub": "${Stage}"}})
    as_json = r.resolve({"Fn::ToJsonString": {"bucket": {"Ref": "Bucket"}}})
    # Then each gives what CloudFormation gives
    assert (memory, fallback, encoded, as_json) == (512, 128, "ZGV2", '{"bucket":"in-bucket"}')


def test_unsupported_functions_and_unknown_conditions_are_named() -> None:
    # Given a resolver
    r = resolver()
    # When a function it does not implement or an undefined condition is used
    with pytest.raises(TemplateError) as unsupported:
        r.resolve({"Fn::ImportValue": "SharedVpc"})
    with pytest.raises(TemplateError) as undefined:
        r.resolve({"Fn::If": ["Nope", 1, 2]})
    # Then the error names it
    assert "Fn::ImportValue" in str(unsupported.value)
    assert "'Nope'" in str(undefined.value)


def test_skipped_resources_resolve_to_placeholders_that_name_them() -> None:
    # Given a resource type the loader skips
    references = StackReferences({}, "eu-west-1", "123456789012", warn=lambda _: None)
    references.skipped["Search"] = "AWS::OpenSearchService::Domain"
    # When it is referenced
    endpoint = references.get_att("Search", "DomainEndpoint")
    arn = references.get_att("Search", "Arn")
    name = references.ref("Search")
    # Then the placeholders name it, and ARN attributes stay ARN-shaped for IAM policies
    assert endpoint == "<skipped AWS::OpenSearchService::Domain Search.DomainEndpoint>"
    assert arn == "arn:aws:skipped:eu-west-1:123456789012:AWS::OpenSearchService::Domain/Search"
    assert name == "<skipped AWS::OpenSearchService::Domain Search>"


def test_parameters_use_defaults_lists_and_the_cdk_bootstrap_version() -> None:
    # Given CDK's BootstrapVersion parameter (an SSM parameter type) and a list parameter
    template = {
        "Parameters": {
            "BootstrapVersion": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            },
            "Zones": {"Type": "CommaDelimitedList", "Default": "a, b"},
            "Stage": {"Type": "String", "Default": "dev"},
        }
    }
    # When the values are worked out (no SSM call is needed for BootstrapVersion)
    values = stack_parameters(ctx=None, template=template, given={"Stage": "prod"})  # type: ignore[arg-type]
    # Then given values win over defaults and lists are split
    assert values == {"BootstrapVersion": LOCAL_BOOTSTRAP_VERSION, "Zones": ["a", "b"], "Stage": "prod"}


def test_a_parameter_without_default_must_be_given() -> None:
    # Given a parameter with no Default
    template = {"Parameters": {"DomainArn": {"Type": "String"}}}
    # When no value is passed
    with pytest.raises(TemplateError) as error:
        stack_parameters(ctx=None, template=template, given={})  # type: ignore[arg-type]
    # Then the error says how to pass one
    assert "DomainArn" in str(error.value) and "parameters=" in str(error.value)
