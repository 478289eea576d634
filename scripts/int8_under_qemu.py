"""Run the local MiniLM's graph variants under an emulated CPU, to see their real cosines there.

    .venv/bin/python scripts/int8_under_qemu.py [--cpu Haswell] [--cpu Westmere ...]

qemu-user (Debian: apt-get install qemu-user) runs this same interpreter with the CPUID of a CPU model, so
onnxruntime's MLAS picks that CPU's int8 kernels for real: -cpu Haswell gives AVX2 without AVX-512 or VNNI
(QEMU's TCG implements AVX2 since 7.2, and no AVX-512 at all, so AVX-512 classes cannot be tried this way);
-cpu Westmere gives SSE4 only. For each model it prints every variant's lowest and mean cosine against the
sentence-transformers reference vectors, what the probe of local.model.variant finds, and the variant the
embedder would choose there. Only cosines mean anything under qemu: its speed is an emulator's.

/proc/cpuinfo under qemu-user is still the host's file, so the flags local.model.cpu reads are the host's;
that the choice is right anyway is the probe's doing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.model import OnnxSentenceEmbedder  # noqa: E402
from local.model.variant import GraphVariant, for_this_machine, products_are_exact  # noqa: E402

REFERENCE = ROOT / "tests" / "fixtures" / "minilm_reference.jsonl"
DEFAULT_CPUS = ("Haswell", "Westmere")
TIMEOUT_SECONDS = 1800


def inside() -> dict[str, object]:
    """What this process (under qemu) measures: the probe, the choice and each variant's cosines."""
    rows = [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines() if line.strip()]
    expected = np.array([row["embedding"] for row in rows], dtype=np.float32)
    result: dict[str, object] = {
        "u8s8_exact": products_are_exact(unsigned_weights=False),
        "u8u8_exact": products_are_exact(unsigned_weights=True),
        "chosen": str(for_this_machine()),
    }
    for variant in GraphVariant:
        actual = OnnxSentenceEmbedder.default(threads=1, variant=variant).embed([row["text"] for row in rows])
        cosines = (actual * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
        worst = int(np.argmin(cosines))
        result[str(variant)] = {
            "min": round(float(cosines.min()), 4),
            "mean": round(float(cosines.mean()), 4),
            "worst_text": rows[worst]["text"][:30],
        }
    return result


def under_qemu(qemu: str, model: str) -> dict[str, object] | str:
    command = [qemu, "-cpu", model, sys.executable, __file__, "--inside"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return f"no answer within {TIMEOUT_SECONDS} s"
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "TCG doesn't support" not in line]
        return f"exit {done.returncode}: " + " | ".join(errors[-3:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cpu", action="append", help=f"QEMU CPU model (default: {', '.join(DEFAULT_CPUS)})")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside()))
        return 0
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("qemu-x86_64 not found: apt-get install qemu-user", file=sys.stderr)
        return 2
    failed = False
    for model in args.cpu or DEFAULT_CPUS:
        result = under_qemu(qemu, model)
        if isinstance(result, str):
            print(f"qemu -cpu {model}: {result}")
            failed = True
            continue
        verdicts = {pair: "exact" if result[f"{pair}_exact"] else "NOT exact" for pair in ("u8s8", "u8u8")}
        print(
            f"qemu -cpu {model}: probe u8s8 {verdicts['u8s8']}, u8u8 {verdicts['u8u8']}; "
            f"default variant there: {result['chosen']}"
        )
        for variant in GraphVariant:
            figures = result[str(variant)]
            assert isinstance(figures, dict)
            print(
                f"  {variant:<8} min cosine {figures['min']:.4f} ({figures['worst_text']!r}), "
                f"mean {figures['mean']:.4f}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
