"""Independent scanners over the synthesized templates: checkov, cfn-lint and parliament.

Each runs once per session over the four shapes' templates (helpers.SCAN_SHAPES): checkov once for all of
them, from its own virtualenv (.venv-scanners, `make install`: it pins boto3 1.35 and packaging 23, which
the project's own pins exclude), concurrently with cfn-lint; parliament in process on every IAM policy.
A report is the set of shapes each check fails in; scanner_skips.yaml says which failures are accepted
and why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from parliament import analyze_policy_string

from tests.infra.helpers import ROOT, SCAN_SHAPES

SCANNERS_VENV = ROOT / ".venv-scanners"
CHECKOV_DRIVER = Path(__file__).with_name("checkov_driver.py")
SKIPS_FILE = Path(__file__).with_name("scanner_skips.yaml")
MIN_REASON = 20


@dataclass
class ScanReport:
    scanner: str
    failing: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # check -> shapes
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # shape -> failed results
    passed: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # shape -> passed results
    scanned: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # shape -> what was read


@dataclass(frozen=True)
class Skip:
    reason: str
    shapes: tuple[str, ...]


def load_skips(path: Path = SKIPS_FILE) -> dict[str, dict[str, Skip]]:
    """scanner -> check -> Skip; a skip without `shapes` applies to all four."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        scanner: {
            check: Skip(str(entry["reason"]), tuple(entry.get("shapes") or SCAN_SHAPES))
            for check, entry in (checks or {}).items()
        }
        for scanner, checks in raw.items()
    }


def unexplained(report: ScanReport, skips: Mapping[str, Skip]) -> list[tuple[str, str]]:
    """(check, shape) pairs that fail with no skip for that shape."""
    return sorted(
        (check, shape)
        for check, shapes in report.failing.items()
        for shape in shapes
        if check not in skips or shape not in skips[check].shapes
    )


def stale(report: ScanReport, skips: Mapping[str, Skip]) -> list[tuple[str, str]]:
    """(check, shape) pairs a skip names that no longer fail: each would hide a future failure."""
    return sorted(
        (check, shape)
        for check, skip in skips.items()
        for shape in skip.shapes
        if shape not in report.failing.get(check, set())
    )


def start_checkov(paths: Mapping[str, Path]) -> subprocess.Popen[str]:
    python = SCANNERS_VENV / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} is missing: `make install` creates the scanners' virtualenv")
    files = [argument for path in paths.values() for argument in ("--file", str(path))]
    command = [str(python), str(CHECKOV_DRIVER), "--framework", "cloudformation", *files]
    command += ["--output", "json", "--compact", "--skip-download"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checkov_report(process: subprocess.Popen[str], paths: Mapping[str, Path]) -> ScanReport:
    stdout, stderr = process.communicate()
    if process.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov exited {process.returncode}: {stderr[-2000:]}")
    results = json.loads(stdout)
    if results.get("summary", {}).get("parsing_errors"):
        raise RuntimeError(f"checkov could not parse a template: {results['summary']}")
    shape_of = {path.name: shape for shape, path in paths.items()}
    report = ScanReport("checkov")
    for outcome in ("passed_checks", "failed_checks"):
        for check in results["results"][outcome]:
            shape = shape_of[Path(check["file_path"]).name]
            if outcome == "failed_checks":
                report.failing[check["check_id"]].add(shape)
                report.failed[shape] += 1
            else:
                report.passed[shape] += 1
            report.scanned[shape] = 1
    return report


def start_cfn_lint(paths: Mapping[str, Path]) -> subprocess.Popen[str]:
    executable = Path(sys.executable).with_name("cfn-lint")  # the project's virtualenv's
    command = [str(executable), "--format", "json", "--", *(str(p) for p in paths.values())]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cfn_lint_report(process: subprocess.Popen[str], paths: Mapping[str, Path]) -> ScanReport:
    stdout, stderr = process.communicate()
    if process.returncode not in (0, 2, 4, 6, 8, 10, 12, 14):  # bit flags: 2 error, 4 warning, 8 info
        raise RuntimeError(f"cfn-lint exited {process.returncode}: {stderr[-2000:]}")
    shape_of = {path.name: shape for shape, path in paths.items()}
    report = ScanReport("cfn-lint")
    for match in json.loads(stdout or "[]"):
        shape = shape_of[Path(match["Filename"]).name]
        report.failing[match["Rule"]["Id"]].add(shape)
        report.failed[shape] += 1
    for shape in paths:
        report.scanned[shape] = 1
    return report


# --- parliament -------------------------------------------------------------------------------------------
# parliament reads literal policies: intrinsics become plausible values of the right shape (a GetAtt Arn
# becomes an ARN of the referenced resource's type), and numbers become strings (it crashes on numeric
# condition values).
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "osbatch",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/osbatch/0f1e2d3c-1111-2222-3333",
}
ARN_OF = {
    "AWS::S3::Bucket": "arn:aws:s3:::{}",
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:us-east-1:123456789012:table/{}",
    "AWS::Lambda::Function": "arn:aws:lambda:us-east-1:123456789012:function:{}",
    "AWS::IAM::Role": "arn:aws:iam::123456789012:role/{}",
    "AWS::SQS::Queue": "arn:aws:sqs:us-east-1:123456789012:{}",
    "AWS::Logs::LogGroup": "arn:aws:logs:us-east-1:123456789012:log-group:{}:*",
    "AWS::KMS::Key": "arn:aws:kms:us-east-1:123456789012:key/{}",
    "AWS::SNS::Topic": "arn:aws:sns:us-east-1:123456789012:{}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:{}",
    "AWS::OpenSearchService::Domain": "arn:aws:es:us-east-1:123456789012:domain/{}",
}
REF_IS_ARN = ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine")


def literal(template: Mapping[str, Any], value: Any) -> Any:
    resources = template["Resources"]
    if isinstance(value, Mapping):
        if "Ref" in value:
            name = value["Ref"]
            if name in PSEUDO:
                return PSEUDO[name]
            kind = resources[name]["Type"]
            return ARN_OF[kind].format(name.lower()) if kind in REF_IS_ARN else name.lower()
        if "Fn::GetAtt" in value:
            name, attribute = value["Fn::GetAtt"]
            if attribute == "Arn":
                return ARN_OF[resources[name]["Type"]].format(name.lower())
            return f"{name.lower()}-{attribute.lower()}"
        if "Fn::Join" in value:
            delimiter, parts = value["Fn::Join"]
            return delimiter.join(str(literal(template, part)) for part in parts)
        if "Fn::Split" in value:
            delimiter, text = value["Fn::Split"]
            return str(literal(template, text)).split(delimiter)
        if "Fn::Select" in value:
            index, items = value["Fn::Select"]
            return literal(template, items)[int(index)]
        return {key: literal(template, item) for key, item in value.items()}
    if isinstance(value, list):
        return [literal(template, item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def identity_policies(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.append(properties["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            found.extend(inline["PolicyDocument"] for inline in properties.get("Policies", []))
    return found


def finding_key(issue: str, detail: Any) -> list[str]:
    """RESOURCE_MISMATCH per action (a skip for one action must not hide another's); others by issue."""
    if issue == "RESOURCE_MISMATCH" and isinstance(detail, list):
        return sorted({f"{issue}:{item['action']}" for item in detail})
    return [issue]


def parliament_report(templates: Mapping[str, Mapping[str, Any]]) -> ScanReport:
    report = ScanReport("parliament")
    for shape, template in templates.items():
        for document in identity_policies(template):
            findings = analyze_policy_string(json.dumps(literal(template, document))).findings
            for finding in findings:
                for key in finding_key(finding.issue, finding.detail):
                    report.failing[key].add(shape)
            report.failed[shape] += len(findings)
            report.passed[shape] += not findings
            report.scanned[shape] += 1
    return report
