"""The CPU a bench ran on, named the same way by every bench: model name and its vector extensions.

A figure is only comparable on the same kind of CPU, so every bench prints this line before its figures.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# The extensions that decide how fast onnxruntime's and orjson's inner loops run.
VECTOR_FLAGS = re.compile(r"^(avx2|avx_vnni|avx512[a-z_0-9]*|amx_[a-z0-9]+)$")


def cpu_summary(cpuinfo: Path = CPUINFO) -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores (x86_64; avx2 avx512bw ...)', or what is known off Linux."""
    model_line: str | None = None
    flags = set[str]()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model_line is None:
                model_line = value.strip()
            elif key in ("flags", "Features") and not flags:  # x86, arm64
                flags = {flag for flag in value.split() if VECTOR_FLAGS.match(flag)}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = model_line or platform.processor() or "unknown CPU"
    extensions = " ".join(sorted(flags)) or "no AVX2"
    return f"{model}, {cores} cores ({platform.machine()}; {extensions})"
