"""Which reduced-precision arithmetic the CPU does, read from /proc/cpuinfo's text."""

from ml.runtime import computes_bfloat16, computes_half_precision, features_listed

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse2 avx2 f16c avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8
"""
EPYC_ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx f16c fma avx2
"""
EPYC_ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx f16c fma avx2 avx512f avx512bw avx512vl avx512_bf16 avx512_vnni
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp cpuid
"""


def test_the_first_cores_flags_are_read_on_x86_and_on_arm():
    assert {"avx512_fp16", "amx_bf16", "f16c"} <= features_listed(SAPPHIRE_RAPIDS)
    assert "asimdhp" in features_listed(GRAVITON)
    assert features_listed("processor\t: 0\n") == frozenset()


def test_half_precision_is_native_only_with_its_arithmetic_not_its_conversions():
    assert computes_half_precision(features_listed(SAPPHIRE_RAPIDS))
    assert computes_half_precision(features_listed(GRAVITON))
    assert not computes_half_precision(features_listed(EPYC_ZEN3))  # F16C converts; it does not compute


def test_bfloat16_with_amx_tiles_or_avx512_bf16s_dot_products():
    assert computes_bfloat16(features_listed(SAPPHIRE_RAPIDS))
    assert computes_bfloat16(features_listed(EPYC_ZEN4))  # no AMX
    assert not computes_bfloat16(features_listed(EPYC_ZEN3))
    assert not computes_bfloat16(features_listed(GRAVITON))
    assert not computes_half_precision(features_listed(EPYC_ZEN4))
