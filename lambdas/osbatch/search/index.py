"""Create a pipeline's index from its config mapping, or check the existing one, before anything is paid for.

Without this, the first bulk request would create the index with dynamic mappings, and vectors would be
mapped as float arrays instead of knn_vector: silently unsearchable by k-NN. An index that already exists
with another type or dimension for a mapped field would reject every document, so it is refused up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from opensearchpy.exceptions import RequestError, TransportError

ALREADY_EXISTS = "resource_already_exists_exception"
# How long to wait for an existing index's primary shards before going on regardless.
ACTIVE_SHARDS_TIMEOUT = "30s"
# The properties of a field whose disagreement makes documents unindexable or vectors incomparable.
CHECKED = (("type",), ("dimension",), ("method", "space_type"), ("space_type",))


class IndexMappingConflict(ValueError):
    """The index exists with a mapping that cannot hold what the pipeline writes."""


def ensure_index(client: Any, index: str, body: dict[str, Any]) -> bool:
    """Create `index` with `body` (settings and mappings, as in PUT /<index>) unless it exists.

    True when this call created it. Create-and-tolerate rather than check-then-create: jobs running
    concurrently can race, and one request is cheaper than two.
    """
    try:
        client.indices.create(index=index, body=body or None)
    except RequestError as error:
        if error.error == ALREADY_EXISTS:
            _wait_for_primaries(client, index)
            return False
        raise
    return True


def _wait_for_primaries(client: Any, index: str) -> None:
    """Wait until the index's primary shards are active (cluster health yellow), as index creation itself
    waits for them. An index another job created a moment ago, or one the node is recovering after a
    restart, otherwise answers the first search with 503 search_phase_execution_exception, which would fail
    the job ("Cluster health", docs.opensearch.org/latest/api-reference/cluster-api/cluster-health/).
    Best effort: a domain whose access control refuses cluster health, or a wait that times out, goes on,
    and the search says what is wrong."""
    with suppress(TransportError):
        client.cluster.health(index=index, wait_for_status="yellow", timeout=ACTIVE_SHARDS_TIMEOUT)


def ensure_compatible_index(client: Any, index: str, body: dict[str, Any]) -> bool:
    """ensure_index, and for an index that was already there, check its mapping against the config's.

    Only the fields the config maps are compared, so an index with more fields (made by hand, or by another
    pipeline) is fine. Raises IndexMappingConflict naming every field that disagrees.
    """
    if ensure_index(client, index, body):
        return True
    wanted = dict(_fields(body.get("mappings", {}).get("properties", {})))
    if not wanted:
        return False
    response: dict[str, Any] = client.indices.get_mapping(index=index)
    # An alias may resolve to an index of another name; a pipeline writes to exactly one.
    first: dict[str, Any] = next(iter(response.values()), {})
    mapping: dict[str, Any] = first.get("mappings", {})
    actual = dict(_fields(mapping.get("properties", {})))
    problems = [
        problem for name, field in wanted.items() for problem in _compare(name, field, actual.get(name))
    ]
    if problems:
        raise IndexMappingConflict(
            f"index '{index}' exists with a mapping that does not match sink.mapping: {'; '.join(problems)}. "
            "Use another sink.index, or reindex into one created from this mapping."
        )
    return False


def _fields(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted name, field mapping) of every leaf field, objects' sub-properties included, and of every
    object with its type (`nested` matters: an index where it is a plain object holds the passages' vectors
    as unrelated arrays, so nested k-NN search cannot find them)."""
    for name, field in properties.items():
        if not isinstance(field, dict):
            continue
        if "properties" in field:
            # GET _mapping leaves out an object's `type`; it is "object" unless it says otherwise.
            yield f"{prefix}{name}", {"type": field.get("type", "object")}
            yield from _fields(field["properties"], f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def _compare(name: str, wanted: dict[str, Any], actual: dict[str, Any] | None) -> Iterator[str]:
    if actual is None:
        yield f"{name} is not mapped (documents would map it dynamically, not as {wanted.get('type')})"
        return
    for path in CHECKED:
        expected, found = _at(wanted, path), _at(actual, path)
        if expected is not None and expected != found:
            yield f"{name}.{'.'.join(path)} is {found!r}, the pipeline needs {expected!r}"


def _at(mapping: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = mapping
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value
