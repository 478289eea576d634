"""Create a pipeline's index from its config mapping before anything is written to it.

Without this, the first bulk request would create the index with dynamic mappings, and vectors would be
mapped as float arrays instead of knn_vector: silently unsearchable by k-NN.
"""

from __future__ import annotations

from typing import Any

from opensearchpy.exceptions import RequestError

ALREADY_EXISTS = "resource_already_exists_exception"


def ensure_index(client: Any, index: str, body: dict[str, Any]) -> bool:
    """Create `index` with `body` (settings and mappings, as in PUT /<index>) unless it exists.

    True when this call created it. Create-and-tolerate rather than check-then-create: chunks or plans
    running concurrently can race, and one request is cheaper than two.
    """
    try:
        client.indices.create(index=index, body=body or None)
    except RequestError as error:
        if error.error == ALREADY_EXISTS:
            return False
        raise
    return True
