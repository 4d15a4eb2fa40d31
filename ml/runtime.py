"""Process settings: those Paddle must see before it is imported, and how the C allocator returns memory.

Paddle sets OMP_NUM_THREADS=1 when it is unset, and its bundled MKL takes a slow
path on AMD CPUs unless MKL_DEBUG_CPU_TYPE=5; both measured on a 2-core EPYC
(training 40 -> ~100 images/s). `ml/__init__.py` imports this module, so any `import ml.…` comes before paddle.
"""

import ctypes
import ctypes.util
import os

os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
os.environ.setdefault("GLOG_minloglevel", "2")


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
