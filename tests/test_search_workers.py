"""Several worker processes on one study, and a worker killed mid-trial.

Runs on PostgreSQL when $SCALELAB_TEST_POSTGRES_URL is set (CI starts a server), else on a SQLite file.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
import torch
from optuna.trial import TrialState

from scalelab.search import RunOptions, Status, build, read_record, run_study
from scalelab.search.record import study_records
from scalelab.search.storage import open_storage
from scalelab.search.study import create_or_resume, point_of, read_plan

pytestmark = pytest.mark.usefixtures("one_thread")


def _worker(url, name):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "scalelab", "worker", "--study", name, "--storage", url,
                             "--device", "cpu", "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _create(url, name, settings):
    config, _ = build(settings)
    storage = open_storage(url)
    study = create_or_resume(storage, name, config, torch.device("cpu"))
    return config, storage, study


def test_two_workers_finish_every_grid_point_exactly_once(shared_storage, tiny_grid):
    url, name = shared_storage
    wide = {**tiny_grid["search"], "step": 0.05, "tolerance": 0.1, "measured_tolerance": 0.2}  # 12 networks
    _, _, study = _create(url, name, {**tiny_grid, "search": wide})
    points = len(read_plan(study).networks)
    assert points == 12
    workers = [_worker(url, name) for _ in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    ran = [int(out.split("ran ")[1].split()[0]) for out, _ in outputs]
    trials = study.get_trials()
    assert sum(ran) == len(trials) == points  # no trial beyond one per point
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert Counter(point_of(t) for t in trials) == Counter(range(points))
    records = study_records(study)  # one record per trial, each complete, each its own trial's
    assert [(r.number, r.status) for r in records] == [(t.number, Status.COMPLETE) for t in trials]
    assert len({(r.point.alpha, r.point.beta, r.point.gamma) for r in records}) == points


def test_worker_killed_mid_trial_loses_and_repeats_nothing_on_resume(shared_storage, tiny_grid, tmp_path):
    url, name = shared_storage
    slow = {**tiny_grid, "train": {**tiny_grid["train"], "max_images": 2048}}
    config, storage, study = _create(url, name, slow)
    worker = _worker(url, name)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        if TrialState.COMPLETE in states and TrialState.RUNNING in states:
            break
        assert worker.poll() is None, "the worker finished before it could be killed; make trials longer"
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    before = {t.number: (t.value, t.datetime_complete) for t in study.get_trials() if t.state == TrialState.COMPLETE}
    killed = [t.number for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert before and len(killed) == 1

    run_study(config, RunOptions(study=name, storage=url, run_dir=str(tmp_path), device="cpu", progress=False))
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert Counter(point_of(t) for t in done) == Counter(range(len(read_plan(study).networks)))
    assert {t.number: (t.value, t.datetime_complete) for t in done if t.number in before} == before
    assert trials[killed[0]].state == TrialState.FAIL  # its heartbeat went stale
    assert read_record(trials[killed[0]]) is None  # killed before it could record anything
    retry = [t for t in done if t.system_attrs.get("failed_trial") == killed[0]]
    assert len(retry) == 1 and point_of(retry[0]) == point_of(trials[killed[0]])
    # the retry trains the killed trial's queued network (the kill may come before it suggested its params)
    assert retry[0].params == trials[killed[0]].system_attrs["fixed_params"]
    assert all(read_record(t).status is Status.COMPLETE and read_record(t).number == t.number for t in done)
