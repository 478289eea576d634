"""The local embedding model: all-MiniLM-L6-v2 on onnxruntime, offline."""

from local.model.cache import load_embedder
from local.model.embedder import Embedder, OnnxSentenceEmbedder

__all__ = ["Embedder", "OnnxSentenceEmbedder", "load_embedder"]
