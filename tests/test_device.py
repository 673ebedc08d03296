import subprocess
import sys
import time

import pytest

from scalelab import device


def test_busy_cores_sees_a_process_that_keeps_a_core_busy():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert device.busy_cores(0.5) >= 0.5
    finally:
        hog.kill()
        hog.wait()


@pytest.mark.parametrize("busy, workers, expected", [(0.0, 1, 2), (0.4, 1, 2), (1.0, 1, 1), (0.0, 2, 1), (2.0, 1, 1)])
def test_threads_are_the_free_cores_shared_among_workers(monkeypatch, busy, workers, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "available_cores", lambda: 2)
    monkeypatch.setattr(device, "busy_cores", lambda: busy)
    assert device.threads_per_worker(workers) == expected


def test_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(device, "busy_cores", lambda: 2.0)
    assert device.threads_per_worker(2) == 3
