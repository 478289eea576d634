"""Which int8 graph each CPU class gets: the kernel table MLAS implies, and the probe that checks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.model import cpu
from local.model.variant import GraphVariant, choose, predicted, products_are_exact
from tests.unit.cpu_classes import (
    ALDER_LAKE,
    AVX_VNNI_WITH_AVX512_BUT_NO_AVX512_VNNI,
    CASCADE_LAKE,
    HASWELL,
    KNIGHTS_LANDING,
    SAPPHIRE_RAPIDS,
    SKYLAKE_SP,
    WESTMERE,
    ZEN4,
    x86,
)


@pytest.mark.parametrize(
    ("flags", "u8s8", "u8u8", "variant"),
    [
        (HASWELL, cpu.U8S8_AVX2, cpu.U8U8_AVX2, GraphVariant.U8U8),
        (SKYLAKE_SP, cpu.U8S8_AVX512_CORE, cpu.U8U8_AVX512_CORE, GraphVariant.U8U8),
        (KNIGHTS_LANDING, cpu.U8S8_AVX2, cpu.U8U8_AVX2, GraphVariant.U8U8),
        (
            AVX_VNNI_WITH_AVX512_BUT_NO_AVX512_VNNI,
            cpu.U8S8_AVX512_CORE,
            cpu.U8U8_AVX512_CORE,
            GraphVariant.U8U8,
        ),
        (CASCADE_LAKE, cpu.U8S8_AVX512_VNNI, cpu.U8U8_AVX512_CORE, GraphVariant.U8S8),
        (ZEN4, cpu.U8S8_AVX512_VNNI, cpu.U8U8_AVX512_CORE, GraphVariant.U8S8),
        (ALDER_LAKE, cpu.U8S8_AVX_VNNI, cpu.U8U8_AVX2, GraphVariant.U8S8),
        (SAPPHIRE_RAPIDS, cpu.U8S8_AMX, cpu.U8U8_AVX512_CORE, GraphVariant.U8S8),
        (WESTMERE, cpu.SSE, cpu.SSE, GraphVariant.U8S8),
        (HASWELL + " avx_vnni_int8", cpu.U8S8_AVX2, cpu.U8U8_AVX_VNNI_INT8, GraphVariant.U8U8),
    ],
)
def test_each_cpu_class_gets_the_kernels_mlas_selects_and_an_exact_variant(
    flags: str, u8s8: cpu.Kernel, u8u8: cpu.Kernel, variant: GraphVariant
) -> None:
    # Given a CPU class by its /proc/cpuinfo flags
    info = x86(flags)

    # When the kernel table is read for it
    # Then it names the kernels MLAS's platform.cpp picks, the U8U8 one is always exact,
    # and the variant called for is U8S8 exactly where its kernel is exact
    assert cpu.u8s8_kernel(info) == u8s8
    assert cpu.u8u8_kernel(info) == u8u8
    assert u8u8.exact
    assert predicted(info) is variant
    assert (variant is GraphVariant.U8S8) == u8s8.exact


def test_saturating_kernels_are_exactly_the_vpmaddubsw_ones() -> None:
    # Given every kernel in the table / When / Then only the two VPMADDUBSW kernels are inexact
    kernels = [value for value in vars(cpu).values() if isinstance(value, cpu.Kernel)]
    assert {kernel.name for kernel in kernels if not kernel.exact} == {
        "MlasGemmU8S8KernelAvx2",
        "MlasGemmU8S8KernelAvx512Core",
    }
    assert all(("VPMADDUBSW" in kernel.instruction) != kernel.exact for kernel in kernels)


def test_a_cpu_the_table_calls_exact_still_needs_the_probe_to_agree() -> None:
    # Given a VNNI CPU by its flags, in a process where u8s8 products are not exact (qemu-user does this:
    # the flags are the host's, the CPUID the guest's)
    info = x86(ZEN4)

    # When the variant is chosen / Then it is U8U8, and with no exact product at all, the shipped graph
    assert choose(info, exact_here=lambda unsigned: unsigned) is GraphVariant.U8U8
    assert choose(info, exact_here=lambda unsigned: False) is GraphVariant.SHIPPED
    assert choose(info, exact_here=lambda unsigned: True) is GraphVariant.U8S8


def test_a_cpu_the_table_calls_saturating_never_gets_u8s8_even_if_the_probe_passes() -> None:
    # Given an AVX2-only CPU, and a probe that (wrongly, say for a shape it did not try) calls u8s8 exact
    info = x86(HASWELL)

    # When / Then the table's word stands: U8U8
    assert choose(info, exact_here=lambda unsigned: True) is GraphVariant.U8U8


def test_off_x86_the_probe_alone_decides() -> None:
    # Given an arm64 CPU, which this table does not describe
    info = cpu.CpuInfo(model="unknown", flags=frozenset({"fp", "asimd", "asimddp"}), machine="aarch64")

    # When / Then
    assert cpu.u8s8_kernel(info) is None and predicted(info) is None
    assert choose(info, exact_here=lambda unsigned: True) is GraphVariant.U8S8
    assert choose(info, exact_here=lambda unsigned: unsigned) is GraphVariant.U8U8


def test_cpuinfo_is_read_from_the_kernels_file(tmp_path: Path) -> None:
    # Given a /proc/cpuinfo of two cores
    core = f"processor\t: {{n}}\nmodel name\t: Intel(R) Xeon(R) Gold 6148\nflags\t\t: {SKYLAKE_SP}\n\n"
    path = tmp_path / "cpuinfo"
    path.write_text(core.format(n=0) + core.format(n=1))

    # When it is read
    info = cpu.CpuInfo.of_this_machine(path)

    # Then the model and flags are the first core's, and the summary names the flags that matter
    assert info.model == "Intel(R) Xeon(R) Gold 6148"
    assert info.has("avx512bw", "avx512vl") and not info.has("avx512_vnni")
    assert info.summary().startswith("Intel(R) Xeon(R) Gold 6148 (")
    assert "avx512bw" in info.summary() and "sse4_1" not in info.summary()


def test_the_probe_agrees_with_the_table_on_this_machine() -> None:
    # Given this machine's CPU, as its flags describe it
    info = cpu.CpuInfo.of_this_machine()
    if not info.is_x86_64:
        pytest.skip("the kernel table describes x86-64 only")
    u8s8 = cpu.u8s8_kernel(info)
    assert u8s8 is not None

    # When onnxruntime multiplies values where a saturating kernel must go wrong
    # Then U8U8 is exact (on every x86-64 CPU), and U8S8 is exact exactly where the table says so
    assert products_are_exact(unsigned_weights=True)
    assert products_are_exact(unsigned_weights=False) == u8s8.exact, info.summary()
