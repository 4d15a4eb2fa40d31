"""Process settings: those Paddle must see before it is imported, how the C allocator returns memory, and
which reduced-precision arithmetic the CPU does in hardware.

Paddle sets OMP_NUM_THREADS=1 when it is unset, and its bundled MKL takes a slow
path on AMD CPUs unless MKL_DEBUG_CPU_TYPE=5; both measured on a 2-core EPYC
(training 40 -> ~100 images/s). On Intel CPUs that setting only holds MKL to its AVX2 path: training ran
at 59.6 images/s with it and 69.4 without (2-core Xeon with AVX-512, four alternating runs each of
`python bench/bench_training.py --steps 40 --one '{}'`), so it is set on AMD CPUs alone.
`ml/__init__.py` imports this module, so any `import ml.…` comes before paddle.
"""

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which may be fewer than the machine has."""
    return len(os.sched_getaffinity(0))


CPU_INFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_info_text() -> str:
    """/proc/cpuinfo as read once, or "" where there is none."""
    try:
        return CPU_INFO.read_text()
    except OSError:
        return ""


def first_core_value(cpu_info: str, names: tuple[str, ...]) -> str:
    """The value of the first line named one of `names` in a /proc/cpuinfo text (the first core's), or ""."""
    for line in cpu_info.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in names:
            return value.strip()
    return ""


def math_library_settings(cpu_info: str) -> dict[str, str]:
    """The environment MKL is to start with on the CPU a /proc/cpuinfo text describes (see the module's text)."""
    return {"MKL_DEBUG_CPU_TYPE": "5"} if first_core_value(cpu_info, ("vendor_id",)) == "AuthenticAMD" else {}


os.environ.setdefault("OMP_NUM_THREADS", str(usable_cores()))
os.environ.setdefault("GLOG_minloglevel", "2")
for _name, _value in math_library_settings(cpu_info_text()).items():
    os.environ.setdefault(_name, _value)


def math_threads() -> int:
    """The threads Paddle's math libraries are to run on: OMP_NUM_THREADS, as set above or by the environment."""
    return int(os.environ["OMP_NUM_THREADS"])


def use_math_threads() -> None:
    """Have Paddle's math libraries (MKL and its OpenMP) run on OMP_NUM_THREADS threads again, process-wide.

    That variable only gives the count they start with: creating or running a Paddle Inference predictor
    sets it to the predictor's thread count, so a process that had loaded a one-thread `Predictor` trained
    on one core (2-core Xeon: 128 training images/s on two threads, 105 on one). It is set above to every
    usable core unless the environment chose a count."""
    from paddle.base import core  # not at import: this module is imported before Paddle, to set its environment

    core.set_num_threads(math_threads())


# mallopt's parameter number for the mmap threshold (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
LARGE_ALLOCATION_BYTES = 4 * 2**20


def give_large_allocations_back() -> bool:
    """Have glibc serve every allocation of LARGE_ALLOCATION_BYTES or more from a mapping of its own, which
    goes back to the system when freed. Whether it applied (not on another C library).

    glibc does so by default only until a large block is freed, then raises its threshold to that block's
    size (up to 32 MB): a decoded photo's pixels then come from the heap and stay with the process after
    use, and web workers that had read large uploads stayed at 1.5 GB (issue 14). Smaller allocations, those
    of an ordinary request, are served as before. bench/bench_upload_memory.py measures it."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES))


def cpu_features() -> frozenset[str]:
    """The feature flags of the CPU as Linux lists them (x86's "flags", ARM's "Features"); none elsewhere."""
    return features_listed(cpu_info_text())


def features_listed(cpu_info: str) -> frozenset[str]:
    """The flags named on the first core's flags or Features line of a /proc/cpuinfo text."""
    return frozenset(first_core_value(cpu_info, ("flags", "Features")).split())


def computes_half_precision(features: frozenset[str] | None = None) -> bool:
    """Whether the CPU does 16-bit float arithmetic itself: x86's AVX512-FP16, ARM's FP16 vector arithmetic.
    Elsewhere (F16C, for one) it can only convert 16-bit floats to 32 bits and back: no arithmetic to gain."""
    features = cpu_features() if features is None else features
    return bool(features & {"avx512_fp16", "asimdhp"})


def computes_bfloat16(features: frozenset[str] | None = None) -> bool:
    """Whether the CPU does bfloat16 arithmetic itself, which oneDNN runs convolutions in: x86's AMX tiles or
    AVX512_BF16's dot products (AMD's Zen 4: v5 took 4.9 ms a crop and its mirror against 7.1 ms in float32, with
    FER2013 PrivateTest at 71.5% either way; 2-core EPYC, one core, `python bench/bench_inference.py` and
    `bench/bench_accuracy.py`). Elsewhere oneDNN would emulate it, slowly."""
    features = cpu_features() if features is None else features
    return bool(features & {"amx_bf16", "avx512_bf16"})
