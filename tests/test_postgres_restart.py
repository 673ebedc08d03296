"""The database server restarting in the middle of a two-worker grid study: workers ride it out (their
heartbeats and storage calls are retried) and every point ends complete exactly once.

Needs a PostgreSQL server of its own, which it restarts: CI starts a second server for it and sets
$SCALELAB_TEST_POSTGRES_RESTART_URL and $SCALELAB_TEST_POSTGRES_RESTART (the command that restarts that
server, e.g. `pg_ctlcluster 15 restartable restart`).
"""

import os
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
import torch
from optuna.trial import TrialState

from scalelab.search import Status, build
from scalelab.search.record import study_records
from scalelab.search.storage import open_storage
from scalelab.search.study import create_or_resume, point_of, read_plan

URL = os.environ.get("SCALELAB_TEST_POSTGRES_RESTART_URL")
RESTART = os.environ.get("SCALELAB_TEST_POSTGRES_RESTART")
pytestmark = pytest.mark.skipif(not (URL and RESTART), reason="needs a PostgreSQL server of its own to restart (CI)")


def test_server_restart_mid_study_leaves_every_point_complete_once(tiny_grid):
    name = f"restart-{uuid.uuid4().hex[:10]}"
    # A whole epoch of cifar10-mini per network (seconds), so that the restart falls in the middle of a trial.
    settings = {**tiny_grid, "heartbeat_s": 2, "train": {**tiny_grid["train"], "max_images": None}}
    config, _ = build(settings)
    study = create_or_resume(open_storage(URL), name, config, torch.device("cpu"))
    points = len(read_plan(study).networks)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-m", "scalelab", "worker", "--study", name, "--storage", URL,
                                 "--device", "cpu", "--no-progress"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.monotonic() + 120  # both workers inside a trial: the restart cuts training, not start-up
    while len(study.get_trials(states=(TrialState.RUNNING,))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    subprocess.run(RESTART, shell=True, check=True, timeout=60)
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    study = create_or_resume(open_storage(URL), name, config, torch.device("cpu"))  # a fresh connection
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert Counter(point_of(t) for t in complete) == Counter(range(points))
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    records = [r for r in study_records(study) if r.status is Status.COMPLETE]
    assert sorted(r.number for r in records) == sorted(t.number for t in complete)
