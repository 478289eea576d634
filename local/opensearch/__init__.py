"""The local OpenSearch node (k-NN, ML Commons, neural-search) and the mapping changes it needs."""

from local.opensearch.mapping import UnsupportedLocalMapping, localize_mapping
from local.opensearch.node import OpenSearchNode

__all__ = ["OpenSearchNode", "UnsupportedLocalMapping", "localize_mapping"]
