"""app.py and pipeline loading: a bad config stops synth with one clear message that names the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.pipelines import load_pipelines
from osbatch.config import ConfigError
from tests.infra.helpers import CONTEXT, ROOT, example_data


def _write(directory: Path, name: str, data: dict) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_invalid_pipeline_fails_synth_naming_file_and_field(tmp_path: Path) -> None:
    # Given a pipeline whose polling backoff is out of range
    data = example_data()
    data["inference"]["polling"]["backoff_rate"] = 10
    bad = _write(tmp_path, "bad.yaml", data)

    # When app.py runs as `cdk synth` would run it, with that config
    context = {**CONTEXT, "pipelines": str(bad)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it exits 2 with one message naming the file and the field, and no traceback
    assert result.returncode == 2, result.stderr
    assert f"{bad}: inference.polling.backoff_rate: Input should be less than or equal to 4" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_the_example_pipelines_load_with_the_default_glob() -> None:
    # Given the repository's pipelines directory
    # When the default glob is loaded
    config, long_documents = load_pipelines(root=ROOT)

    # Then they are the long-documents pipeline, which chunks, and the python-docs example with the
    # documented settings
    assert long_documents.name == "python-modules" and long_documents.source.chunking is not None
    assert config.name == "python-docs"
    assert config.source.prefix == "input/python-docs/"
    assert (
        config.inference.sagemaker is not None and config.inference.sagemaker.ModelName == "minilm-embedder"
    )
    assert config.sink.mapping["settings"]["index.knn"] is True
    embedding = config.sink.mapping["mappings"]["properties"]["chunk_embedding"]
    assert embedding["dimension"] == 384 and embedding["method"]["engine"] == "faiss"
    assert config.sink.field_map == {
        "_id": "$._id",
        "chunk": "$.text",
        "chunk_embedding": "$.SageMakerOutput",
    }


def test_no_matching_configs_is_an_error(tmp_path: Path) -> None:
    # Given an empty directory
    # When its configs are loaded
    # Then the error names the pattern
    with pytest.raises(ConfigError, match=r"no pipeline configs match 'nothing/\*.yaml'"):
        load_pipelines("nothing/*.yaml", tmp_path)


def test_duplicate_pipeline_names_are_an_error(tmp_path: Path) -> None:
    # Given two files declaring the same pipeline name
    data = example_data()
    _write(tmp_path, "a.yaml", data)
    _write(tmp_path, "b.yaml", {**data, "source": {**data["source"], "prefix": "input/other/"}})

    # When they are loaded together
    # Then the repeated name is reported
    with pytest.raises(ConfigError, match="repeated: python-docs"):
        load_pipelines("*.yaml", tmp_path)
