"""What a workflow step is handed besides its JobState: a few typed ports, built by handlers/wiring.py.

A step needs the pipeline it runs under (DeployedPipeline) and the job's data (dal.JobStore); only the
steps that need more (a clock, an event publisher) take those as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from osbatch.backends.base import BatchBackend
from osbatch.chunking import Chunker
from osbatch.config import PipelineConfig

if TYPE_CHECKING:
    from opensearchpy import OpenSearch


@dataclass(frozen=True)
class DeployedPipeline:
    """A deployed pipeline as its steps use it: its config, its inference backend, its OpenSearch client and,
    when it chunks records into passages, its Chunker."""

    config: PipelineConfig
    backend: BatchBackend
    opensearch: OpenSearch
    chunker: Chunker | None = None
