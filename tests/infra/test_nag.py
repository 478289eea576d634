"""cdk-nag: no unacknowledged AwsSolutions finding, and every acknowledgement carries a reason."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

import infra.nag
from infra.nag import allow, flatten
from infra.stack import OsbatchStack
from tests.infra.helpers import ALARM_TARGETS, CREATED, SECOND, Synth, new_app, pipeline


def test_aws_solutions_checks_pass_on_both_stacks(synth: Synth) -> None:
    # Given the synthesized app (existing domains, and a created domain)
    # When the AwsSolutions pack runs over it, as app.py's validation plugin does during `cdk synth`
    report = AwsSolutionsChecks(verbose=True).validate_scope(synth.app)

    # Then there is nothing left to fix or acknowledge
    findings = [
        f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations
    ]
    assert report.success, "\n".join(findings)


def test_every_acknowledgement_has_a_written_reason(synth: Synth) -> None:
    # Given every acknowledgement recorded in the construct tree
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledged = {
        rule: reason
        for construct in synth.app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == key
        for rule, reason in entry.data.items()
    }

    # Then there are some, each for an AwsSolutions rule, each with a sentence of reason
    assert acknowledged
    for rule, reason in acknowledged.items():
        assert "AwsSolutions-" in rule, rule
        assert isinstance(reason, str) and len(reason) >= 20, rule


def test_a_wildcard_grant_without_a_reason_is_refused() -> None:
    # Given a role in a stack
    stack = cdk.Stack(new_app(), "S")
    role = cdk.aws_iam.Role(stack, "R", assumed_by=cdk.aws_iam.ServicePrincipal("lambda.amazonaws.com"))

    # When an object wildcard is granted without saying why, or an action wildcard at all
    # Then the grant is refused before cdk-nag would have to flag it
    with pytest.raises(ValueError, match="needs a reason"):
        allow(role, ["s3:GetObject"], ["arn:aws:s3:::bucket/*"])
    with pytest.raises(ValueError, match="name actions exactly"):
        allow(role, ["s3:*"], ["arn:aws:s3:::bucket"])


def test_flatten_renders_references_like_cdk_nag() -> None:
    # Given a resolved ARN with a GetAtt, a pseudo parameter and a nested intrinsic
    value = {
        "Fn::Join": [
            "",
            [
                {"Fn::GetAtt": ["Bucket", "Arn"]},
                "/",
                {"Ref": "AWS::Region"},
                "/",
                {"Fn::Select": [0, ["a"]]},
                "/*",
            ],
        ]
    }

    # When it is flattened
    # Then it reads as in cdk-nag's finding ids
    assert flatten(value) == '<Bucket.Arn>/<AWS::Region>/{"Fn::Select":[0,["a"]]}/*'


def test_every_acknowledgement_matches_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the suite's two stacks built again with every acknowledgement recorded instead of made
    recorded: list[tuple[str, str]] = []

    class Recorder:
        """Stands in for cdk.Validations in infra.nag.acknowledge, through which every one is made."""

        def __init__(self, scope: IConstruct) -> None:
            self.path = scope.node.path

        @classmethod
        def of(cls, scope: IConstruct) -> Recorder:
            return cls(scope)

        def acknowledge(self, acknowledgment: cdk.Acknowledgment) -> None:
            recorded.append((self.path, acknowledgment.id))

    monkeypatch.setattr(infra.nag, "Validations", Recorder)
    app = new_app()
    OsbatchStack(app, "osbatch", pipelines=[pipeline(), pipeline(**SECOND)], alarm_targets=ALARM_TARGETS)
    OsbatchStack(app, "osbatch-created", pipelines=[pipeline(**CREATED)])

    # When cdk-nag checks them with nothing acknowledged
    report = AwsSolutionsChecks(verbose=True).validate_scope(app)
    findings = [(v.rule_name, r.construct_path) for v in report.violations for r in v.violating_resources]

    # Then each acknowledgement silences a finding on its construct or below it: none is left over to hide
    # a future finding it was never written for
    def silences(path: str, rule: str) -> bool:
        return any(
            found_rule == rule and (found_path == path or found_path.startswith(f"{path}/"))
            for found_rule, found_path in findings
        )

    assert recorded
    assert [(path, rule) for path, rule in recorded if not silences(path, rule)] == []
