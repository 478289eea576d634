"""PyTorch's native libraries for ML Commons' local models, from Maven Central instead of DJL's CDN.

ML Commons runs local (ONNX) models on DJL's OnnxRuntime engine, which loads PyTorch as its "alternative
engine" for the array operations of pooling and normalization. DJL 0.31.1 (bundled with ML Commons 3.6)
finds no libtorch in the plugin and downloads it from publish.djl.ai at the first deploy, which fails
offline (ml-commons#1902). DJL's PYTORCH_LIBRARY_PATH points it at a folder holding libtorch and the JNI
bridge instead:
- libtorch 2.5.1 (the version ML Commons asks for) is `ai.djl.pytorch:pytorch-native-cpu`;
- the JNI bridge for 0.31.1 was never published to Maven Central. 2.5.1-0.32.0 is the nearest: its native
  sources are those of 0.31.1 but for one line in interpolate (`git diff v0.31.1 v0.32.0` in djl), so the
  JNI symbols the 0.31.1 engine calls are the same.
Only linux-x86_64 has both artifacts; elsewhere local models still need DJL's CDN.
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from local.opensearch.artifacts import Artifact, download
from local.opensearch.transfer import transfer_display

PYTORCH_VERSION = "2.5.1"
CLASSIFIER = "linux-x86_64"
NATIVE = Artifact("ai.djl.pytorch", "pytorch-native-cpu", PYTORCH_VERSION, "jar", CLASSIFIER)
JNI = Artifact("ai.djl.pytorch", "pytorch-jni", f"{PYTORCH_VERSION}-0.32.0", "jar")
# Inside the jars: libtorch built with the C++11 ABI, and the JNI bridge of the same flavour.
NATIVE_PREFIX = f"pytorch/cpu/{CLASSIFIER}/"
JNI_MEMBER = f"jnilib/{CLASSIFIER}/cpu/libdjl_torch.so"
ENV_VAR = "PYTORCH_LIBRARY_PATH"


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


def pytorch_dir(cache_root: Path) -> Path:
    return cache_root / "opensearch" / f"djl-pytorch-{PYTORCH_VERSION}-cpu"


def ensure_pytorch_natives(cache_root: Path, mvn: str | None, progress: Callable[[str], None]) -> Path | None:
    """The folder for PYTORCH_LIBRARY_PATH, fetched and unpacked once; None where no artifacts exist."""
    if not supported():
        progress("note: Maven Central has no PyTorch natives for this platform; local models need DJL's CDN")
        return None
    target = pytorch_dir(cache_root)
    if (target / "libtorch.so").is_file() and (target / "libdjl_torch.so").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"fetching PyTorch {PYTORCH_VERSION} natives for local models with mvn (~115 MB, once)")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".djl-") as scratch:
        work = Path(scratch)
        staged = work / "lib"
        staged.mkdir()
        show = transfer_display(progress)
        try:
            native, jni = download(NATIVE, work, mvn, show), download(JNI, work, mvn, show)
        finally:
            show.close()
        _extract(native, staged, lambda name: name.startswith(NATIVE_PREFIX))
        _extract(jni, staged, lambda name: name == JNI_MEMBER)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)  # complete or absent: an interrupted fetch leaves nothing half-there
    return target


def _extract(jar: Path, dest: Path, wanted: Callable[[str], bool]) -> None:
    with zipfile.ZipFile(jar) as archive:
        for info in archive.infolist():
            if info.is_dir() or not wanted(info.filename):
                continue
            with archive.open(info) as source, (dest / Path(info.filename).name).open("wb") as out:
                shutil.copyfileobj(source, out)
