"""The CPU a process runs on: how many torch threads a training process should use, and its name."""

from __future__ import annotations

import os
import platform

import psutil


def cpu_threads_per_process(requested: int | None = None) -> int:
    """`requested`; else OMP_NUM_THREADS when it asks for more than 1; else this machine's
    physical cores shared among its training processes (LOCAL_WORLD_SIZE, set by torchrun).

    `accelerate launch` exports OMP_NUM_THREADS=1 to CPU runs unless given
    `--num_cpu_threads_per_process N` (then it exports N), and one thread halves the speed of a
    single process on two cores. A 1 there is its default, not a choice: `requested` states one.
    """
    if requested:
        return requested
    exported = os.environ.get("OMP_NUM_THREADS", "")
    if exported.isdigit() and int(exported) > 1:
        return int(exported)
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may run on
        cores = min(cores, len(os.sched_getaffinity(0)))
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


def cpu_name() -> str:
    """This machine's processor as Linux names it, with its core count, e.g. "a 2-core Intel(R)
    Xeon(R) Processor" (platform.processor() is often empty or just the architecture)."""
    try:
        with open("/proc/cpuinfo") as info:
            name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or "CPU"
    return f"a {os.cpu_count()}-core {name}"
