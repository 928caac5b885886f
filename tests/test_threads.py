"""CPU training threads: an explicit choice wins, accelerate's default of 1 does not."""

from __future__ import annotations

import os

import psutil
import pytest

from cyclegan_hub.threads import cpu_name, cpu_threads_per_process


@pytest.fixture
def launched(monkeypatch):
    """The environment `accelerate launch` gives a single CPU process."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    return monkeypatch


def test_the_launchers_single_thread_is_replaced_by_the_physical_cores(launched):
    threads = cpu_threads_per_process()
    assert 1 <= threads <= (psutil.cpu_count(logical=False) or os.cpu_count())
    if hasattr(os, "sched_getaffinity"):
        assert threads <= len(os.sched_getaffinity(0))
    launched.delenv("OMP_NUM_THREADS")
    assert cpu_threads_per_process() == threads  # unset means the same as accelerate's 1


def test_processes_on_one_machine_share_its_cores(launched):
    alone = cpu_threads_per_process()
    launched.setenv("LOCAL_WORLD_SIZE", "2")
    assert cpu_threads_per_process() == max(1, alone // 2)
    launched.setenv("LOCAL_WORLD_SIZE", "1000")
    assert cpu_threads_per_process() == 1


def test_explicit_choices_win(launched):
    launched.setenv("OMP_NUM_THREADS", "5")  # e.g. accelerate launch --num_cpu_threads_per_process 5
    assert cpu_threads_per_process() == 5
    assert cpu_threads_per_process(requested=3) == 3  # --cpu_threads 3
    launched.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads_per_process(requested=1) == 1


def test_the_cpu_is_named_with_its_core_count():
    """What model cards say the run trained on: the processor's name, not just the architecture."""
    name = cpu_name()
    assert name.startswith(f"a {os.cpu_count()}-core ") and len(name) > len(f"a {os.cpu_count()}-core ")
    if os.path.exists("/proc/cpuinfo") and "model name" in open("/proc/cpuinfo").read():
        assert name.split("-core ", 1)[1] not in ("x86_64", "CPU", "")
