"""Training speed of the recipe and of Paddle's options, in images per second on this machine.

    python bench/bench_training.py [--steps 30]

Each variant's speed is also given as GFLOP/s, counting a training step as three times the
net's forward multiply-adds (two FLOPs each: the forward pass, and twice that backward), and
as a share of this machine's single-precision matrix-multiply peak on the same cores, NumPy's
sgemm on 2048x2048 matrices: a ratio, not just images per second.

Each variant runs in its own process (thread and MKL settings must be fixed before Paddle
loads) and times full training steps: augmentation, forward, backward, SGD update, on
FER-sized random crops. The recipe's own settings are marked with *. Run it on an idle
machine: anything else on the two cores shows up in the figures.

Measured on 2026-11-25 (2-core AMD EPYC, idle, --steps 15), images/s:

    * recipe (40x40 in the net, batch 64, eager, OMP=2, MKL fix)   200
    48x48 (no resize)                                              123
    batch 32 / batch 128                                           141 / 168
    paddle.jit.to_static                                           173
    OMP_NUM_THREADS=1 (Paddle's default)                           142
    without MKL_DEBUG_CPU_TYPE=5                                   102
    augmentation alone: 12 ms per batch of 64, ~4% of a 320 ms step, so
    loader processes could hide little and would take a core from the math.

On a 2-core Intel Xeon with AVX-512 (2026-12-03, idle, `--steps 40 --one '{}'`, four alternating runs
each), the recipe trained at 59.6 images/s with MKL_DEBUG_CPU_TYPE=5 and 69.4 without it, so ml.runtime sets
it on AMD CPUs only.

Where the issue measured ~50 images/s for eager Paddle on a small VGG net (PyTorch: ~226),
the recipe trains at ~200: close to PyTorch's figure, mostly from the thread and MKL
settings and the 40x40 working size.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORES = str(len(os.sched_getaffinity(0)))

# name: (environment, arguments of one timing run)
VARIANTS = {
    "* recipe: 40x40 inside the net, batch 64, eager, OMP=cores, MKL as ml.runtime sets it": ({}, {}),
    "48x48 (no resize)": ({}, {"working_size": 48}),
    "batch 32": ({}, {"batch_size": 32}),
    "batch 128": ({}, {"batch_size": 128}),
    "paddle.jit.to_static": ({}, {"to_static": True}),
    "OMP_NUM_THREADS=1 (Paddle's default)": ({"OMP_NUM_THREADS": "1"}, {}),
    # ml.runtime sets it on AMD CPUs only. Empty rather than unset, since ml.runtime would set it again there:
    # MKL reads it as its default.
    "MKL_DEBUG_CPU_TYPE=5 (MKL held to its AVX2 path)": ({"MKL_DEBUG_CPU_TYPE": "5"}, {}),
    "MKL_DEBUG_CPU_TYPE empty (MKL's own choice of path)": ({"MKL_DEBUG_CPU_TYPE": ""}, {}),
}


def time_training(working_size: int = 40, batch_size: int = 64, to_static: bool = False, steps: int = 30) -> float:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import paddle

    from ml.augment import AugmentConfig, augment_batch
    from ml.model import ExpressionNet, ModelConfig

    net = ExpressionNet(ModelConfig(working_size=working_size))
    optimizer = paddle.optimizer.Momentum(0.01, momentum=0.9, use_nesterov=True, parameters=net.parameters())
    forward = paddle.jit.to_static(net, full_graph=True) if to_static else net
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size * 4, 48, 48), dtype=np.uint8)
    labels = paddle.to_tensor(rng.integers(0, 7, batch_size))
    warmup = 5
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        batch = images[(step % 4) * batch_size : (step % 4 + 1) * batch_size]
        pixels = paddle.to_tensor(augment_batch(batch, rng, AugmentConfig())[:, None])
        loss = paddle.nn.functional.cross_entropy(forward(pixels), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    return steps * batch_size / (time.perf_counter() - start)


def training_flops_per_image(working_size: int = 40) -> float:
    """FLOPs of one image's training step: 3x the forward pass's convolutions and linear layers, 2 per multiply-add."""
    sys.path.insert(0, str(ROOT))
    from ml.model import ModelConfig

    config = ModelConfig(working_size=working_size)
    multiply_adds, side, channels = 0, working_size, 1
    for out_channels in config.channels:
        for _ in range(config.convs_per_stage):
            multiply_adds += side * side * 9 * channels * out_channels
            channels = out_channels
        side //= 2
    multiply_adds += channels * config.hidden + config.hidden * 7
    return 3 * 2 * multiply_adds


def sgemm_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """NumPy's single-precision matrix multiply on this process's cores, at its best of `repeats`."""
    import numpy as np

    a, b = (np.random.default_rng(seed).random((size, size), dtype=np.float32) for seed in (0, 1))
    a @ b  # warm up the BLAS threads
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def augmentation_milliseconds(batch_size: int = 64, repeats: int = 50) -> float:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from ml.augment import AugmentConfig, augment_batch

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, 48, 48), dtype=np.uint8)
    start = time.perf_counter()
    for _ in range(repeats):
        augment_batch(images, rng, AugmentConfig())
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one variant's JSON arguments
    args = parser.parse_args()
    if args.one:
        print(time_training(**json.loads(args.one), steps=args.steps))
        return
    print(
        f"{'augmentation alone, one batch of 64 (what loader processes could overlap)':<72} "
        f"{augmentation_milliseconds():7.1f} ms",
        flush=True,
    )
    peak = sgemm_peak_gflops()
    print(f"{'NumPy sgemm, 2048x2048, ' + CORES + ' cores (the peak the ratios are against)':<72} {peak:7.1f} GFLOP/s")
    for name, (environment, arguments) in VARIANTS.items():
        inherited = {key: value for key, value in os.environ.items() if key != "MKL_DEBUG_CPU_TYPE"}
        env = {**inherited, "OMP_NUM_THREADS": CORES, **environment}
        command = [sys.executable, __file__, "--steps", str(args.steps), "--one", json.dumps(arguments)]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        images_per_second = float(output.split()[-1])
        gflops = images_per_second * training_flops_per_image(arguments.get("working_size", 40)) / 1e9
        print(
            f"{name:<72} {images_per_second:7.1f} images/s  {gflops:5.1f} GFLOP/s  {gflops / peak:5.1%} of sgemm",
            flush=True,
        )


if __name__ == "__main__":
    main()
