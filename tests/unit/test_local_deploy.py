"""The local deploy synthesizes from localized copies of the configs, so they must read back unchanged."""

from __future__ import annotations

from pathlib import Path

from infra.pipelines import load_pipelines
from local.deploy import write_configs
from osbatch.config import parse_pipeline
from tests.unit.conftest import pipeline_dict


def test_written_configs_load_back_as_app_py_reads_them(tmp_path: Path) -> None:
    # Given two configs, one with text a YAML writer must quote or escape
    configs = [
        parse_pipeline(pipeline_dict()),
        parse_pipeline(
            pipeline_dict(name="docs", description='Docs: "quoted", 100% ünïcode', source={"prefix": "in/d/"})
        ),
    ]
    # When they are written and loaded with the glob returned, the way app.py loads pipelines
    pattern = write_configs(configs, tmp_path / "pipelines")
    loaded = load_pipelines(pattern)
    # Then the same configs come back, in name order
    assert loaded == sorted(configs, key=lambda config: config.name)


def test_a_pipeline_removed_since_the_last_run_is_not_deployed(tmp_path: Path) -> None:
    # Given configs written once for two pipelines
    directory = tmp_path / "pipelines"
    write_configs([parse_pipeline(pipeline_dict()), parse_pipeline(pipeline_dict(name="old"))], directory)
    # When they are written again without one of them
    pattern = write_configs([parse_pipeline(pipeline_dict())], directory)
    # Then only the remaining one is loaded
    assert [config.name for config in load_pipelines(pattern)] == ["msmarco"]
