"""CPU classes by their /proc/cpuinfo flags (the ones the int8 kernel choice reads, and a few others)."""

from __future__ import annotations

from local.model import cpu

HASWELL = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2"
SKYLAKE_SP = HASWELL + " avx512f avx512dq avx512cd avx512bw avx512vl"
CASCADE_LAKE = SKYLAKE_SP + " avx512_vnni"
ALDER_LAKE = HASWELL + " avx_vnni"
SAPPHIRE_RAPIDS = CASCADE_LAKE + " avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"
ZEN4 = CASCADE_LAKE + " avx512_bf16 avx512vbmi avx512_vbmi2"
KNIGHTS_LANDING = HASWELL + " avx512f avx512cd avx512er avx512pf"  # AVX-512 F without BW/DQ/VL
WESTMERE = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt"
# No such CPU is sold, but MLAS's order makes the AVX-512 core kernel override the AVX-VNNI one.
AVX_VNNI_WITH_AVX512_BUT_NO_AVX512_VNNI = SKYLAKE_SP + " avx_vnni"


def x86(flags: str, model: str = "test CPU") -> cpu.CpuInfo:
    return cpu.CpuInfo(model=model, flags=frozenset(flags.split()), machine="x86_64")
