"""The CLI's error handling: one clear line, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from cli.target import TargetError, aws_target


def test_an_invalid_pipeline_config_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a pipeline config with a misspelled field
    config = tmp_path / "bad.yaml"
    config.write_text(
        "name: bad\nsource: {prefix: in/, sufix: .jsonl}\n"
        "inference: {backend: sagemaker, sagemaker: {ModelName: m}}\n"
        "sink: {opensearch: {endpoint: 'http://127.0.0.1:9200'}, index: bad, field_map: {v: $.x}}\n"
    )
    (tmp_path / "data.jsonl").write_text("{}\n")
    # When the CLI is asked to submit input for it
    code = main(["--pipelines", str(config), "submit", str(tmp_path / "data.jsonl"), "--pipeline", "bad"])
    # Then it exits 2 with one line naming the file and the field
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"osbatch: error: {config}: source.sufix: unknown field (check the spelling)\n"


def test_an_unknown_pipeline_lists_the_known_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given the deployed pipelines (pipelines/*.yaml) / When a pipeline that does not exist is named
    code = main(["submit", str(tmp_path / "x.jsonl"), "--pipeline", "nope"])
    # Then the error says which ones exist
    assert code == 2
    assert (
        "no pipeline 'nope' in pipelines/*.yaml; known: python-docs, python-modules"
        in capsys.readouterr().err
    )


def test_without_a_local_stack_or_an_aws_region_the_target_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no AWS region anywhere (no environment variable, no config file)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # When the CLI looks for the AWS stack
    # Then it is a TargetError naming both ways forward, not botocore's NoRegionError
    with pytest.raises(TargetError, match=r"osbatch up && osbatch deploy --local.*set AWS_REGION"):
        aws_target()
