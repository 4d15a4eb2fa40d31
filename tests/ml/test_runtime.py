"""Which reduced-precision arithmetic the CPU does, and which MKL settings suit it, read from /proc/cpuinfo's text."""

import os
import subprocess
import sys

from ml.runtime import computes_bfloat16, computes_half_precision, cpu_info_text, features_listed, math_library_settings

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


def test_mkl_is_held_to_its_avx2_path_on_amd_cpus_only():
    assert math_library_settings(EPYC_ZEN3) == {"MKL_DEBUG_CPU_TYPE": "5"}
    assert math_library_settings(EPYC_ZEN4) == {"MKL_DEBUG_CPU_TYPE": "5"}
    assert math_library_settings(SAPPHIRE_RAPIDS) == {}  # slower with it: see ml.runtime
    assert math_library_settings(GRAVITON) == {}
    assert math_library_settings("") == {}


def test_importing_ml_sets_this_machines_mkl_settings_unless_the_environment_chose():
    environment = {name: value for name, value in os.environ.items() if name != "MKL_DEBUG_CPU_TYPE"}

    def setting_after_import(env: dict[str, str]) -> str:
        show = "import ml, os; print(os.environ.get('MKL_DEBUG_CPU_TYPE', 'unset'))"
        return subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True).stdout

    expected = math_library_settings(cpu_info_text()).get("MKL_DEBUG_CPU_TYPE", "unset")
    assert setting_after_import(environment).strip() == expected
    assert setting_after_import({**environment, "MKL_DEBUG_CPU_TYPE": "4"}).strip() == "4"
