"""Choosing the compute device: passed in explicitly everywhere, never global."""

from __future__ import annotations

import os
import sys
import time

import torch

from scalelab.errors import ScalelabError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ScalelabError(f"unknown device '{name}'; use auto, cpu or cuda") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ScalelabError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ScalelabError(f"device '{name}' is not supported; use auto, cpu or cuda")
    return device


def has_fast_bf16(device: str | torch.device) -> bool:
    """CUDA, or a CPU whose oneDNN has bfloat16 kernels (AVX512-BF16 or AMX)."""
    if torch.device(device).type == "cuda":
        return True
    try:  # a private oneDNN query (no public one exists); an older or newer torch may lack it
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def announce_threads(device: torch.device, workers: int, progress: bool) -> None:
    """Set this process's torch threads (:func:`threads_per_worker`; the workers set their own) and,
    with ``progress``, say where training runs and whether the machine is busy."""
    threads = threads_per_worker(workers)
    if workers == 1:
        torch.set_num_threads(threads)
    if progress:
        where = f"{workers} workers x {threads} torch threads" if workers > 1 else f"{threads} torch threads"
        print(f"device {device}, {where} ({available_cores()} cores available)", file=sys.stderr, flush=True)
        warning = load_warning()
        if warning:
            print(warning, file=sys.stderr, flush=True)


def threads_per_worker(workers: int = 1) -> int:
    """Torch threads for each of ``workers`` processes on this machine: ``$OMP_NUM_THREADS`` when set,
    else the CPUs this process may run on, less those other processes keep busy (measured over a
    fifth of a second, rounded), shared among the workers; at least 1. Oversubscribed cores make
    OpenMP's spin-waits crawl: a batch-1 forward took 188 ms with two threads beside another busy
    process, 7 ms with one. The load average is not used: it still counts, for a minute, a process that
    has just ended (a `scalelab plan` run before a study halved the study's threads)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    free = max(1, available_cores() - round(busy_cores()))
    return max(1, free // workers)


def busy_cores(seconds: float = 0.2) -> float:
    """How many cores other processes keep busy now: the machine's non-idle CPU time over ``seconds``
    (this process sleeps meanwhile); the one-minute load average where /proc/stat cannot be read."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        idle = ticks[3] + ticks[4]  # idle and iowait
        return sum(ticks) - idle, sum(ticks)
    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return _load()
    cpus = os.cpu_count() or 1
    return cpus * (busy1 - busy0) / max(1, total1 - total0)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_warning() -> str | None:
    """One line when other work already loads every core (timings, and time budgets, will suffer)."""
    load, cores = _load(), available_cores()
    if load <= cores:
        return None
    return (f"warning: the load average ({load:.1f}) exceeds the {cores} cores available: other work is "
            "running, so training is slower and timings are noisy; budgets in epochs or images are unaffected")


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0
