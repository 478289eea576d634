"""Which int8 GEMM kernel onnxruntime runs on a CPU, and whether it computes exactly.

onnxruntime's CPU products come from MLAS, which picks one kernel per operand pair when the library loads,
from CPUID (onnxruntime/core/mlas/lib/platform.cpp, MLAS_PLATFORM::MLAS_PLATFORM; a later check overrides
an earlier one). MatMulIntegerToFloat with uint8 A runs GemmU8S8Dispatch for int8 B and GemmU8U8Dispatch
for uint8 B (qgemm.h, MlasGemmQuantGetDispatch). On x86-64, as of the onnxruntime pinned in requirements:

| CPU features (cumulative) | U8S8 kernel (int8 weights)                  | U8U8 kernel (uint8 weights)     |
|---------------------------|---------------------------------------------|---------------------------------|
| SSE2/SSE4 only            | U8X8DispatchSse: int16-widened, PMADDWD     | the same                        |
| AVX2 + FMA                | U8S8KernelAvx2: VPMADDUBSW, saturates       | U8U8KernelAvx2: VPMADDWD        |
| + AVX-VNNI                | U8S8KernelAvxVnni: VPDPBUSDS                | unchanged                       |
| + AVX-512 F/BW/DQ/VL      | U8S8KernelAvx512Core: VPMADDUBSW, saturates | U8U8KernelAvx512Core: VPMADDWD  |
|                           | (checked after AVX-VNNI, so it overrides it) |                                |
| + AVX512_VNNI             | U8S8KernelAvx512Vnni: VPDPBUSDS             | unchanged                       |
| + AMX-TILE/INT8, OS-enabled | U8S8DispatchAmx: TDPBUSD; small GEMMs on  | unchanged                       |
|                           | U8S8KernelAvx512Vnni                        |                                 |
| + AVX-VNNI-INT8           | unchanged                                   | U8U8DispatchAvx2Vnni: VPDPBUUD  |

Kernels: x86_64/QgemmU8X8KernelAvx2.S (MultiplyAccumulateRowU8S8Avx2: vpmaddubsw then vpmaddwd by ones;
...U8S8AvxVnni: VpdpbusdsYmmYmmYmm; ...U8U8Avx2: vpmaddwd on words zero-extended by vpmovzxbw),
x86_64/QgemmU8X8KernelAvx512Core.S (MultiplyAccumulateCellU8S8Avx512Core / ...Avx512Vnni / ...U8U8...),
qgemm_kernel_amx.cpp, qgemm_kernel_sse.cpp. VPMADDUBSW adds two uint8 x int8 products into an int16 with
saturation: 255 * 127 * 2 = 64770 > 32767, so those two U8S8 kernels are wrong wherever an activation pair
and a weight pair are both large (tests/unit/mlas_emulation.py replays it). Every other kernel sums into
int32: exact. So U8U8 is exact on every x86-64 CPU, and U8S8 only with VNNI (or AMX) or without AVX2.

Features come from /proc/cpuinfo, the kernel's view of CPUID with what the OS does not enable removed. It is
not always what a process's CPUID says (qemu-user passes the host's file through), so local.model.variant
also checks the products themselves before trusting a U8S8 graph.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
X86_64 = frozenset({"x86_64", "amd64"})
AVX512_CORE = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"})
AMX_INT8 = frozenset({"amx_tile", "amx_int8"})
# The flags the kernel choice depends on, in the order MLAS checks them; bench/embed.py prints these.
RELEVANT_FLAGS = (
    "avx",
    "fma",
    "avx2",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "amx_tile",
    "amx_int8",
    "avx_vnni_int8",
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    machine: str

    @classmethod
    def of_this_machine(cls, cpuinfo: Path = CPUINFO) -> CpuInfo:
        model, flags = "unknown", frozenset[str]()
        if cpuinfo.is_file():
            for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:  # x86, arm64
                    flags = frozenset(value.split())
        return cls(model=model, flags=flags, machine=platform.machine().lower())

    @property
    def is_x86_64(self) -> bool:
        return self.machine in X86_64

    def has(self, *flags: str) -> bool:
        return all(flag in self.flags for flag in flags)

    def summary(self) -> str:
        """'AMD EPYC (x86_64; avx fma avx2 ... avx512_vnni)': the model and the flags the kernels read."""
        present = [flag for flag in RELEVANT_FLAGS if flag in self.flags]
        return f"{self.model} ({self.machine}; {' '.join(present) or 'no AVX'})"


@dataclass(frozen=True)
class Kernel:
    name: str  # the MLAS kernel (or dispatch) symbol
    instruction: str
    exact: bool


SSE = Kernel("MlasGemmU8X8DispatchSse", "PMADDWD on int16-widened operands", exact=True)
U8S8_AVX2 = Kernel("MlasGemmU8S8KernelAvx2", "VPMADDUBSW (int16 saturation) + VPMADDWD", exact=False)
U8S8_AVX_VNNI = Kernel("MlasGemmU8S8KernelAvxVnni", "VPDPBUSDS", exact=True)
U8S8_AVX512_CORE = Kernel(
    "MlasGemmU8S8KernelAvx512Core", "VPMADDUBSW (int16 saturation) + VPMADDWD", exact=False
)
U8S8_AVX512_VNNI = Kernel("MlasGemmU8S8KernelAvx512Vnni", "VPDPBUSDS", exact=True)
U8S8_AMX = Kernel("MlasGemmU8S8DispatchAmx", "TDPBUSD (small GEMMs: VPDPBUSDS)", exact=True)
U8U8_AVX2 = Kernel("MlasGemmU8U8KernelAvx2", "VPMOVZXBW + VPMADDWD", exact=True)
U8U8_AVX512_CORE = Kernel("MlasGemmU8U8KernelAvx512Core", "VPMOVZXBW + VPMADDWD", exact=True)
U8U8_AVX_VNNI_INT8 = Kernel("MlasGemmU8U8DispatchAvx2Vnni", "VPDPBUUD", exact=True)


def _avx2(cpu: CpuInfo) -> bool:
    # platform.cpp: AVX + OSXSAVE, then FMA (CPUID.1:ECX bit 12) and AVX2 (CPUID.7.0:EBX bit 5)
    return cpu.has("avx", "fma", "avx2")


def u8s8_kernel(cpu: CpuInfo) -> Kernel | None:
    """The kernel MLAS runs for uint8 x int8 on cpu, or None off x86-64 (this table does not apply)."""
    if not cpu.is_x86_64:
        return None
    if not _avx2(cpu):
        return SSE
    kernel = U8S8_AVX_VNNI if cpu.has("avx_vnni") else U8S8_AVX2
    if cpu.flags >= AVX512_CORE:
        kernel = U8S8_AVX512_VNNI if cpu.has("avx512_vnni") else U8S8_AVX512_CORE
    if cpu.flags >= AMX_INT8:
        kernel = U8S8_AMX
    return kernel


def u8u8_kernel(cpu: CpuInfo) -> Kernel | None:
    """The kernel MLAS runs for uint8 x uint8 on cpu, or None off x86-64."""
    if not cpu.is_x86_64:
        return None
    if not _avx2(cpu):
        return SSE
    kernel = U8U8_AVX512_CORE if cpu.flags >= AVX512_CORE else U8U8_AVX2
    if cpu.has("avx_vnni_int8"):
        kernel = U8U8_AVX_VNNI_INT8
    return kernel
