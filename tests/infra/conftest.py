"""One synthesized app shared by the infra suite: synth is the slow part, so it happens once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.stack import OsbatchStack
from tests.infra.helpers import (
    ALARM_TARGETS,
    BATCH_SOURCE_BUCKET,
    CREATED,
    SECOND,
    Synth,
    Synthesized,
    new_app,
    pipeline,
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
