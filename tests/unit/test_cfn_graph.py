"""Creation order of the local CloudFormation loader (no network)."""

from __future__ import annotations

import pytest

from local.aws.cfn_loader.graph import creation_order, dependencies
from local.aws.cfn_loader.intrinsics import TemplateError


def test_references_of_every_kind_become_dependencies() -> None:
    # Given resources that refer to each other through Ref, both GetAtt forms, Sub and DependsOn
    resources = {
        "Function": {
            "Properties": {
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Environment": {"Variables": {"QUEUE": {"Fn::GetAtt": "Queue.QueueName"}}},
                "Description": {"Fn::Sub": "reads ${Bucket} in ${AWS::Region}, not ${!Literal}"},
            },
            "DependsOn": "Policy",
        },
        "Policy": {"Properties": {"Roles": [{"Ref": "Role"}]}, "DependsOn": ["Role"]},
        "Role": {"Properties": {"RoleName": {"Ref": "StageParameter"}}},
        "Queue": {},
        "Bucket": {
            "Properties": {"Tags": [{"Fn::Sub": ["${Arn}", {"Arn": {"Fn::GetAtt": ["Queue", "Arn"]}}]}]}
        },
    }
    # When the dependencies are collected
    graph = dependencies(resources)
    # Then parameters, pseudo parameters and ${!escapes} are not resources
    assert graph == {
        "Function": {"Role", "Queue", "Bucket", "Policy"},
        "Policy": {"Role"},
        "Role": set(),
        "Queue": set(),
        "Bucket": {"Queue"},
    }


def test_order_puts_dependencies_first_and_otherwise_keeps_template_order() -> None:
    # Given a function declared before its role and queue, and two independent buckets
    resources = {
        "Function": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Q": {"Ref": "Queue"}}},
        "BucketA": {},
        "Role": {},
        "Queue": {"Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}}},
        "BucketB": {},
        "Dlq": {},
    }
    # When ordered
    order = creation_order(resources)
    # Then every resource comes after what it needs, and independent ones keep their places
    assert order == ["BucketA", "Role", "BucketB", "Dlq", "Queue", "Function"]


def test_a_cycle_is_reported_with_its_members() -> None:
    # Given two resources that need each other
    resources = {"A": {"Properties": {"X": {"Ref": "B"}}}, "B": {"DependsOn": "A"}, "C": {}}
    # When ordered
    with pytest.raises(TemplateError) as error:
        creation_order(resources)
    # Then the error names the cycle
    assert str(error.value) == "circular dependency between resources: A, B"


def test_depends_on_a_missing_resource_is_an_error() -> None:
    # Given a DependsOn that names nothing
    resources = {"A": {"DependsOn": ["Ghost"]}}
    # When ordered
    with pytest.raises(TemplateError) as error:
        creation_order(resources)
    # Then the error names both ends
    assert "A DependsOn Ghost" in str(error.value)
