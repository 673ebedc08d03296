"""Shared fixtures: tiny study settings and the storage the multi-worker tests share."""

import os
import uuid

import pytest

POSTGRES_ENV = "SCALELAB_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def tiny_settings():
    """Overrides (the shape of a study file) that make any study run in seconds: a quarter-width
    baseline ConvNet at 16 px, 64 training images per trial, 100 validation images."""
    return {
        "device": "cpu",
        "progress": False,
        "val_fraction": 0.04,
        "heartbeat_s": 1,
        "base": {"name": "baseline_convnet", "width": 0.25, "resolution_px": 16},
        "train": {"epochs": 1, "max_images": 64, "batch_size": 32, "augment": "crop"},
    }


@pytest.fixture
def tiny_study(tiny_settings, tmp_path):
    """:func:`tiny_settings` with its own run directory (storage and result files)."""
    return {**tiny_settings, "run_dir": str(tmp_path / "runs")}


@pytest.fixture
def tiny_grid(tiny_study):
    """A grid study with 4 networks to train (alpha stays 1: the baseline ConvNet's one-layer stages
    double for any alpha > 1)."""
    return {**tiny_study, "kind": "grid",
            "search": {"target": "2x", "alpha": [1.0, 1.0], "beta": [1.0, 1.5], "gamma": [1.0, 1.5],
                       "step": 0.1, "measured_tolerance": 0.15}}


@pytest.fixture
def shared_storage(tmp_path):
    """(URL, unique study name): PostgreSQL when $SCALELAB_TEST_POSTGRES_URL is set (an unreachable
    server then fails the test, never skips it), else a SQLite file."""
    url = os.environ.get(POSTGRES_ENV) or f"sqlite:///{tmp_path / 'shared.db'}"
    return url, f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def one_thread():
    """Train on one CPU thread: on a shared, busy machine OpenMP's spin-waiting makes two threads tens
    of times slower than one for these tiny networks."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
