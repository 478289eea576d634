"""Faults of the OpenSearch node itself: restarted with a tiny write thread pool (scenario b), stopped and
started again mid-ingest (scenario c), kept down until the job has ended (scenario h). The node keeps its
data directory across restarts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from local.opensearch.node import OpenSearchNode
from local.runtime import LocalRuntime

# One write thread and a queue of one task: more than two shard-level bulk tasks at once are rejected with
# es_rejected_execution_exception (429). Static settings, so they need a restart (OpenSearch "Thread pool
# settings", docs.opensearch.org/latest/install-and-configure/configuring-opensearch/thread-pool-settings/).
TINY_WRITE_POOL = {"thread_pool.write.size": 1, "thread_pool.write.queue_size": 1}


def restart_node(runtime: LocalRuntime, settings: Mapping[str, object] | None = None) -> None:
    """Stop the node and start it again, with `settings` added (none: the defaults)."""
    stop_node(runtime)
    start_node(runtime, settings)


def stop_node(runtime: LocalRuntime) -> None:
    runtime.opensearch.stop()


def start_node(runtime: LocalRuntime, settings: Mapping[str, object] | None = None) -> None:
    """Start the stopped node, with `settings` added (none: the defaults)."""
    node = runtime.opensearch
    OpenSearchNode(node.port, node.heap, extra_settings=settings).start(progress=lambda _: None)


@contextmanager
def node_with(runtime: LocalRuntime, settings: Mapping[str, object]) -> Iterator[None]:
    """The node restarted with these settings for the block, and with the defaults after it."""
    restart_node(runtime, settings)
    try:
        yield
    finally:
        restart_node(runtime)
