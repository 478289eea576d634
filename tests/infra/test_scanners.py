"""checkov, cfn-lint and parliament on the four shapes: every failure is accepted in scanner_skips.yaml with
a written reason, and every skip there still silences a failure (the rule of the cdk-nag acknowledgements)."""

from __future__ import annotations

import pytest

from tests.infra.helpers import SCAN_SHAPES, ScanTemplates
from tests.infra.scanners import MIN_REASON, ScanReport, load_skips, stale, unexplained

SCANNERS = ("checkov", "cfn-lint", "parliament")


@pytest.mark.parametrize("scanner", SCANNERS)
def test_the_scanner_read_every_shape(scanner: str, scan_reports: dict[str, ScanReport]) -> None:
    # Then each shape's template was read (checkov and parliament also passed checks on it)
    report = scan_reports[scanner]
    assert sorted(report.scanned) == sorted(SCAN_SHAPES)
    if scanner != "cfn-lint":  # cfn-lint reports only what fails
        assert all(report.passed[shape] > 0 for shape in SCAN_SHAPES), dict(report.passed)


@pytest.mark.parametrize("scanner", SCANNERS)
def test_every_failing_check_is_skipped_with_a_reason(
    scanner: str, scan_reports: dict[str, ScanReport]
) -> None:
    # Then nothing fails that scanner_skips.yaml does not accept for that shape
    assert unexplained(scan_reports[scanner], load_skips()[scanner]) == []


@pytest.mark.parametrize("scanner", SCANNERS)
def test_no_skip_is_stale(scanner: str, scan_reports: dict[str, ScanReport]) -> None:
    # Then every skip still silences a failure in each shape it names, so none is left to hide a new one
    assert stale(scan_reports[scanner], load_skips()[scanner]) == []


def test_every_skip_has_a_written_reason() -> None:
    skips = load_skips()
    assert sorted(skips) == sorted(SCANNERS)
    for scanner, checks in skips.items():
        for check, skip in checks.items():
            assert len(skip.reason.strip()) >= MIN_REASON, f"{scanner} {check}"
            assert set(skip.shapes) <= set(SCAN_SHAPES), f"{scanner} {check}: {skip.shapes}"


def test_audit_logs_are_the_one_check_only_a_created_domain_without_fine_grained_access_fails(
    scan_reports: dict[str, ScanReport], scan_templates: ScanTemplates
) -> None:
    # Then checkov's audit-log check fails on the created domain and passes on the fine-grained one
    assert scan_reports["checkov"].failing["CKV_AWS_317"] == {"created"}
    (domain,) = [
        r
        for r in scan_templates.templates["fine-grained"]["Resources"].values()
        if r["Type"] == "AWS::OpenSearchService::Domain"
    ]
    assert domain["Properties"]["LogPublishingOptions"]["AUDIT_LOGS"]["Enabled"] is True
