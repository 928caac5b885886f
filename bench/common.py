"""What the benchmarks share: one process per variant, the device, FLOP counting, peak memory, the report."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def count_flops(run) -> int:
    """FLOPs of one call of `run` (forward and, if it runs one, backward), counted by torch."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def time_runs(run, warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        synchronize()
        started = time.perf_counter()
        run()
        synchronize()  # GPU work is asynchronous: time it to completion
        times.append(time.perf_counter() - started)
    return times


def synchronize() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def peak_memory() -> dict:
    """Peak resident memory of this process so far (Linux reports KiB) and, when a GPU was used,
    its model and peak allocated memory."""
    memory = dict(peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    if torch.cuda.is_initialized():
        memory.update(gpu=torch.cuda.get_device_name(), peak_gpu_gib=torch.cuda.max_memory_allocated() / 2**30)
    return memory


def result(name: str, times: list[float], flops: int, images_per_run: int, memory: dict | None = None, **extra) -> dict:
    """One variant's row; `memory` is `peak_memory()` read earlier, else now."""
    median = statistics.median(times)
    return dict(
        variant=name,
        median_s=median,
        runs=len(times),
        images_per_s=images_per_run / median,
        gflop=flops / 1e9,
        gflop_per_s=flops / 1e9 / median,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        **(memory or peak_memory()),
        **extra,
    )


def run_in_child(script: str, args: list[str]) -> dict:
    """Run one variant in a fresh process (variants in one process skew each other) and read its JSON line."""
    completed = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
