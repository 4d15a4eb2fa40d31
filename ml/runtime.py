"""Process settings Paddle must see before it is imported.

Paddle sets OMP_NUM_THREADS=1 when it is unset, and its bundled MKL takes a slow
path on AMD CPUs unless MKL_DEBUG_CPU_TYPE=5; both measured on a 2-core EPYC
(training 40 -> ~100 images/s). `ml/__init__.py` imports this module, so any `import ml.…` comes before paddle.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
os.environ.setdefault("GLOG_minloglevel", "2")
