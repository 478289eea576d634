"""One synthesized app shared by the infra suite: synth is the slow part, so it happens once per run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aws_cdk.assertions import Template

from infra.stack import OsbatchStack
from tests.infra.helpers import (
    ALARM_TARGETS,
    BATCH_SOURCE_BUCKET,
    CREATED,
    SCAN_SHAPES,
    SECOND,
    ScanTemplates,
    Synth,
    Synthesized,
    new_app,
    pipeline,
    scan_shape,
)
from tests.infra.scanners import (
    ScanReport,
    cfn_lint_report,
    checkov_report,
    parliament_report,
    start_cfn_lint,
    start_checkov,
)


@pytest.fixture(scope="session")
def synth() -> Iterator[Synth]:
    # Given the example pipeline plus a second one (existing domains), alarms to two addresses and a topic,
    # and a pipeline that creates its domain (no alarm target)
    app = new_app()
    main = OsbatchStack(
        app,
        "osbatch",
        pipelines=[pipeline(), pipeline(**SECOND)],
        alarm_targets=ALARM_TARGETS,
        batch_ingest_buckets=[BATCH_SOURCE_BUCKET],
    )
    created = OsbatchStack(app, "osbatch-created", pipelines=[pipeline(**CREATED)])
    # When both stacks are synthesized once (this also runs CloudFormation's template validation)
    yield Synth(
        app,
        Synthesized.of(main),
        Synthesized.of(created),
    )


@pytest.fixture(scope="session")
def main(synth: Synth) -> Synthesized:
    return synth.main


@pytest.fixture(scope="session")
def created(synth: Synth) -> Synthesized:
    return synth.created


@pytest.fixture(scope="session")
def synth_all(synth: Synth) -> list[Synthesized]:
    return [synth.main, synth.created]


@pytest.fixture(scope="session")
def scan_templates(tmp_path_factory: pytest.TempPathFactory) -> ScanTemplates:
    # Given the four shapes the scanners read, each synthesized once in one app, written as `cdk synth` would
    app = new_app()
    stacks = {shape: scan_shape(app, shape) for shape in SCAN_SHAPES}
    directory = tmp_path_factory.mktemp("scanned")
    templates = {shape: Template.from_stack(stack).to_json() for shape, stack in stacks.items()}
    paths = {}
    for shape, template in templates.items():
        paths[shape] = directory / f"{shape}.json"
        paths[shape].write_text(json.dumps(template), encoding="utf-8")
    return ScanTemplates(paths, templates)


@pytest.fixture(scope="session")
def scan_reports(scan_templates: ScanTemplates) -> dict[str, ScanReport]:
    # When checkov (one run over all four) and cfn-lint run side by side, and parliament reads every policy
    checkov = start_checkov(scan_templates.paths)
    cfn_lint = start_cfn_lint(scan_templates.paths)
    try:
        reports = [parliament_report(scan_templates.templates)]
        reports.append(cfn_lint_report(cfn_lint, scan_templates.paths))
        reports.append(checkov_report(checkov, scan_templates.paths))
    finally:
        for process in (checkov, cfn_lint):
            if process.poll() is None:
                process.kill()
                process.wait()
    return {report.scanner: report for report in reports}
