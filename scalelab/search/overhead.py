"""The seconds a process spends on trials outside training, so that each trial can say what it cost
beyond its own training (``Outcome.overhead_s``).

Every second of a worker is given to exactly one trial: a trial's overhead is the time since the
process's previous trial was written (or, for its first trial, since the process started: interpreter
and torch start-up, loading and decoding the data, reading the study, planning it in the command that
creates it) plus its own time outside :func:`scalelab.train.train` (fetching its network, costing and
building it, measuring latency). Writing a trial's record is counted in the next trial's overhead.
"""

from __future__ import annotations

import os
import time


def _process_start() -> float:
    """``time.perf_counter()`` at the moment this process started (Linux), or now where unknown."""
    now = time.perf_counter()
    try:
        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return now - max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return now


_idle_since = _process_start()


def since_last_trial() -> float:
    """Seconds since this process's previous trial was written (or since it started)."""
    return time.perf_counter() - _idle_since


def trial_written() -> None:
    """Start counting the next trial's overhead."""
    global _idle_since
    _idle_since = time.perf_counter()
