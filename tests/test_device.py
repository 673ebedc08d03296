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


@pytest.mark.parametrize("workers", [1, 2])
def test_announce_sets_this_process_threads_only_when_it_trains_itself(monkeypatch, capsys, workers):
    import torch

    monkeypatch.setattr(device, "threads_per_worker", lambda workers: 2 if workers == 1 else 1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        device.announce_threads(torch.device("cpu"), workers, progress=True)
        assert torch.get_num_threads() == (2 if workers == 1 else 1)
    finally:
        torch.set_num_threads(before)
    expected = "2 torch threads" if workers == 1 else "2 workers x 1 torch threads"
    assert f"device cpu, {expected}" in capsys.readouterr().err


def test_train_command_uses_the_free_cores(monkeypatch, capsys):
    import torch

    from scalelab.cli import main

    monkeypatch.setattr(device, "threads_per_worker", lambda workers: 2)
    monkeypatch.setattr(sys, "argv", ["scalelab", "train", "baseline_convnet", "--width", "0.25", "--resolution", "16",
                                      "--max-images", "32", "--batch-size", "16", "--no-test"])
    before = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as info:
            main()
            raise SystemExit(0)
        assert (info.value.code or 0) == 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert "device cpu, 2 torch threads" in capsys.readouterr().err
