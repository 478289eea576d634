"""The Titan (1024 dimensions) and OpenAI (512) example pipelines, run and searched locally at their size.

The emulators answer in the size the pipeline asks for, so the examples deploy as they are; `osbatch
search` then embeds the query through the backend's real-time API (Bedrock InvokeModel, OpenAI
embeddings) with the same model and size, as it would on AWS.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from local.deploy import deploy_local, load_pipelines
from local.runtime import LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.search.client import opensearch_client
from osbatch.search.queries import vector_field
from tests.integration.helpers import TOPICS, job_table, upload, wait_for_end

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "pipelines" / "examples"
SIZES = {"docs-titan": 1024, "docs-openai": 512}  # the examples' `dimensions` and mapping
FILLERS = 100  # Bedrock's minimum of records per batch job, with the topics on top


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A glob matching exactly the two examples."""
    folder = tmp_path_factory.mktemp("examples")
    for name in ("bedrock-titan.yaml", "openai-embeddings.yaml"):
        shutil.copy(EXAMPLES / name, folder / name)
    return str(folder / "*.yaml")


@pytest.fixture(scope="module")
def configs(pipelines: str) -> dict[str, PipelineConfig]:
    return {config.name: config for config in load_pipelines(pipelines)}


@pytest.fixture(scope="module")
def stack(runtime: LocalRuntime, pipelines: str, configs: dict[str, PipelineConfig]) -> Any:
    client = opensearch_client(runtime.opensearch.url)
    for config in configs.values():
        client.indices.delete(index=config.sink.index, ignore_unavailable=True)
    return deploy_local(pipelines, opensearch_url=runtime.opensearch.url, progress=lambda _: None)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_an_example_is_indexed_and_searched_in_its_real_size(
    name: str,
    pipelines: str,
    configs: dict[str, PipelineConfig],
    stack: Any,
    runtime: LocalRuntime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the example deployed as it is, and the topics uploaded with enough filler for a batch job
    config = configs[name]
    records = [{"_id": f"{name}-{topic}", "text": text} for topic, text in TOPICS]
    records += [{"_id": f"{name}-filler-{n}", "text": f"Filler passage number {n}."} for n in range(FILLERS)]
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    job = wait_for_end(job_table(stack), upload(stack, config, f"{name}-{time.time_ns()}.jsonl", body))
    assert (job["state"], job["indexed"]) == ("COMPLETED", len(records))
    # Then the documents carry vectors of the example's size
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    stored = client.get(index=config.sink.index, id=f"{name}-gzip")["_source"][vector_field(config)]
    assert len(stored) == SIZES[name]
    # When `osbatch search` runs a knn query against it
    capsys.readouterr()
    code = main(["--pipelines", pipelines, "search", "decompress a .gz file", "--pipeline", name, "--json"])
    # Then the query, embedded by the same model in the same size, finds the right document first
    assert code == 0
    response = json.loads(capsys.readouterr().out)
    assert response["hits"]["hits"][0]["_id"] == f"{name}-gzip"
