"""Helpers every suite may use: the one way to wait, the session's local runtime, and the documented
`_batch_ingestion` bodies."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from local.runtime import LocalRuntime

T = TypeVar("T")
OPENAI_TEST_KEY = "sk-test-0123456789"  # the key the `openai_api` fixture's emulator accepts


def eventually(
    probe: Callable[[], T | None], *, timeout: float = 120.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll until `probe` returns something truthy, and return it. The timeout only stops a hung test; no
    assertion depends on how long anything took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")


@contextlib.contextmanager
def shared_runtime(runtime: LocalRuntime) -> Iterator[LocalRuntime]:
    """The local runtime for a test session. One already up (the demo's, or `osbatch up`'s) is used as it is
    and left running; otherwise it is started here and stopped at the end, so a CI run leaves no server
    behind. Which runtime that is, is what `osbatch up` would find: the home and ports of this process's
    environment (OSBATCH_HOME, OSBATCH_*_PORT), which no fixture changes, so the tests never look in one
    home for a runtime whose ports another home's runtime holds."""
    was_up = runtime.is_up()
    runtime.up()
    try:
        yield runtime
    finally:
        if not was_up:
            runtime.down()


# The request bodies of the ML Commons "Asynchronous batch ingestion" API page
# (docs.opensearch.org, /latest/ml-commons-plugin/api/async-batch-ingest/), without their `credential` block.
SAGEMAKER_BODY: dict[str, Any] = {
    "index_name": "my-nlp-index",
    "field_map": {
        "chapter": "$.content[0]",
        "title": "$.content[1]",
        "chapter_embedding": "$.SageMakerOutput[0]",
        "title_embedding": "$.SageMakerOutput[1]",
        "_id": "$.id",
    },
    "ingest_fields": ["$.id"],
    "data_source": {"type": "s3", "source": ["s3://offlinebatch/output/sagemaker_batch.json.out"]},
}
OPENAI_BODY: dict[str, Any] = {
    "index_name": "my-nlp-index-openai",
    "field_map": {
        "question": "source[1].$.body.input[0]",
        "answer": "source[1].$.body.input[1]",
        "question_embedding": "source[0].$.response.body.data[0].embedding",
        "answer_embedding": "source[0].$.response.body.data[1].embedding",
        "_id": ["source[0].$.custom_id", "source[1].$.custom_id"],
    },
    "ingest_fields": ["source[2].$.custom_field1", "source[2].$.custom_field2"],
    "data_source": {"type": "openAI", "source": ["file-output", "file-input", "file-other"]},
}


@dataclasses.dataclass(frozen=True)
class RenderedPage:
    dom: str  # the DOM after load, scripts run (what the page shows, not only the file's HTML)
    screenshot: Path


def render_in_chromium(page: Path, screenshot: Path, *, height: int = 2400) -> RenderedPage:
    """Open a local page in headless Chromium (Debian's `chromium`): its DOM after load, and a PNG of it.
    Skips the test where no `chromium` is installed (`apt-get install chromium`)."""
    import pytest

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    # --no-sandbox: Chromium refuses to run its sandbox as root, which CI containers are.
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    subprocess.run(
        [*common, f"--screenshot={screenshot}", f"--window-size=900,{height}", page.as_uri()],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return RenderedPage(dom, screenshot)


def dashboard_widgets(dom: str) -> list[dict[str, str]]:
    """The metric panels of an `osbatch dashboard` page (cli/dashboard_page.py), each as its data-*
    attributes: data-section, data-widget and data-has-data ("yes" or "no")."""
    import re

    return [
        dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        for tag in re.findall(r'<div class="widget" data-section[^>]*>', dom)
    ]
