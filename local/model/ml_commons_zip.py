"""The packaged all-MiniLM-L6-v2 as a zip ML Commons registers from a file:// URL (text_embedding).

ML Commons 3.6 runs ONNX graphs on the onnxruntime 1.16 it bundles, which reads ONNX IR version 9 at most.
The packaged graph is IR 10 with opset 17, which 1.16 implements, so only the IR version field is lowered;
the graph itself is untouched. Built once per source graph, next to the node's state.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import onnx

from local.model import packaged
from osbatch.search.provision import OnnxArtifact

ML_COMMONS_MAX_IR_VERSION = 9
ZIP_NAME = "all-MiniLM-L6-v2-onnx.zip"


def packaged_minilm_zip(folder: Path) -> OnnxArtifact:
    graph_path = packaged.onnx_model_path()
    tokenizer = packaged.sentence_transformers_folder() / "tokenizer.json"
    source = hashlib.sha256(graph_path.read_bytes() + tokenizer.read_bytes()).hexdigest()[:16]
    target = folder / source / ZIP_NAME
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        graph = onnx.load(str(graph_path))
        graph.ir_version = min(graph.ir_version, ML_COMMONS_MAX_IR_VERSION)
        scratch = target.with_suffix(".tmp")
        scratch.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("all-MiniLM-L6-v2.onnx", graph.SerializeToString())
            archive.write(tokenizer, "tokenizer.json")
        scratch.rename(target)
    data = target.read_bytes()
    return OnnxArtifact(
        url=target.resolve().as_uri(), sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
