"""One loaded embedder per model folder, shared by every job in the process.

Loading a model costs seconds and tens of MB; jobs of the same model share one onnxruntime session
(sessions are thread-safe).
"""

from __future__ import annotations

import threading
from pathlib import Path

from local.model.embedder import Embedder, OnnxSentenceEmbedder

_lock = threading.Lock()
_loaded: dict[Path | None, Embedder] = {}


def load_embedder(folder: Path | str | None = None) -> Embedder:
    """The embedder of an ONNX model folder, or the packaged MiniLM when folder is None."""
    key = Path(folder).resolve() if folder is not None else None
    # Held while loading, so two jobs starting together load a model once, not twice.
    with _lock:
        if key not in _loaded:
            _loaded[key] = (
                OnnxSentenceEmbedder.default() if key is None else OnnxSentenceEmbedder.from_folder(key)
            )
        return _loaded[key]
