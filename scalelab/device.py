"""Choosing the compute device: passed in explicitly everywhere, never global."""

from __future__ import annotations

import os

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


def threads_per_worker(workers: int = 1) -> int:
    """Torch threads for each of ``workers`` processes on this machine: ``$OMP_NUM_THREADS`` when set,
    else the CPUs this process may run on, less those other processes keep busy (the one-minute load
    average, rounded), shared among the workers; at least 1. Oversubscribed cores make OpenMP's
    spin-waits crawl: a batch-1 forward took 188 ms with two threads beside another busy process, 7 ms
    with one."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    free = max(1, available_cores() - round(_load()))
    return max(1, free // workers)


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
