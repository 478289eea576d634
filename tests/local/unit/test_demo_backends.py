"""`make demo BACKEND=...`: which pipeline each backend's demo runs, and a clear error for any other."""

from __future__ import annotations

import pytest

from cli.main import main
from local.demo_backends import DEMO_BACKENDS, demo_backend
from local.deploy import load_pipelines
from osbatch.config import Backend


def test_an_unknown_backend_fails_at_once_listing_the_choices(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a demo that must not start anything for a backend it does not know
    import cli.demo

    monkeypatch.setattr(cli.demo, "local_runtime", lambda: pytest.fail("the runtime was started"))
    # When `make demo BACKEND=nope` runs
    code = main(["demo", "--backend", "nope"])
    # Then it exits 2 with one line that lists every backend it does know
    assert code == 2
    assert capsys.readouterr().err == (
        "osbatch: error: unknown demo backend 'nope': "
        "BACKEND must be one of bedrock, ml-commons, openai, sagemaker\n"
    )


@pytest.mark.parametrize("name", sorted(DEMO_BACKENDS))
def test_each_demo_runs_a_pipeline_of_its_backend_with_a_search_side(name: str) -> None:
    # Given a demo backend / When its pipelines are loaded as the demo deploys them
    demo = demo_backend(name)
    config = {config.name: config for config in load_pipelines(demo.pipelines)}[demo.pipeline]
    # Then the sample goes to a pipeline of that backend, which has the search pipeline the demo searches
    assert config.inference.backend is Backend(name)
    assert demo.rerank_pipeline in {pipeline.name for pipeline in config.search_pipelines}
    assert config.search is not None and config.search.query_model


def test_every_demo_has_its_own_prefix_and_index() -> None:
    # Given every demo's pipeline
    configs = [
        {c.name: c for c in load_pipelines(demo.pipelines)}[demo.pipeline] for demo in DEMO_BACKENDS.values()
    ]
    # Then no two share a prefix or an index, so one backend's demo never mixes into another's results
    assert len({c.source.prefix for c in configs}) == len({c.sink.index for c in configs}) == len(configs)


def test_the_demo_help_names_every_backend_and_the_default() -> None:
    # Given the help text cli/main.py shows without importing local/ / Then it names exactly the backends
    from cli.main import DEMO_BACKEND_HELP
    from local.demo_backends import DEFAULT_BACKEND

    named = DEMO_BACKEND_HELP.replace(" (the default)", "").replace(" or ", ", ").split(", ")
    assert sorted(named) == sorted(DEMO_BACKENDS)
    assert f"{DEFAULT_BACKEND} (the default)" in DEMO_BACKEND_HELP
