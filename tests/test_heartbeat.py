"""Heartbeats that survive the storage: transient errors are retried; a worker whose beats stop reaching
the storage stops its trial unrecorded, and the trial is re-run; every point completes exactly once."""

import threading
import time

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

import scalelab.search.trial as trial_module
from scalelab.search import build, read_record, run_study
from scalelab.search.storage import storage_url
from scalelab.search.study import point_of

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def slow_first_trial(monkeypatch):
    """The first trial trains, then holds for 3.5 heartbeat intervals while ``failing`` is set."""
    real_train, calls, failing = trial_module.train, [], threading.Event()

    def train(*args, **kwargs):
        result = real_train(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            failing.set()
            time.sleep(3.5)
            failing.clear()
        return result

    monkeypatch.setattr(trial_module, "train", train)
    return failing


def _inject(monkeypatch, failing, max_failures):
    real_beat, failures = RDBStorage.record_heartbeat, []

    def record_heartbeat(self, trial_id):
        if failing.is_set() and len(failures) < max_failures:
            failures.append(trial_id)
            raise optuna.exceptions.StorageInternalError("injected: server closed the connection")
        return real_beat(self, trial_id)

    monkeypatch.setattr(RDBStorage, "record_heartbeat", record_heartbeat)
    return failures


def _run(tiny_grid):
    config, options = build({**tiny_grid, "study": "hb"})
    run_study(config, options)
    study = optuna.load_study(study_name="hb", storage=storage_url(options.storage, options.run_dir))
    return study.get_trials()


def _complete_once(trials):
    complete = [point_of(t) for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(complete) == [0, 1, 2, 3]  # every point complete exactly once
    assert all(read_record(t).finished for t in trials if t.state == TrialState.COMPLETE)


def test_transient_heartbeat_errors_are_retried_and_the_result_kept(tiny_grid, monkeypatch, slow_first_trial):
    failures = _inject(monkeypatch, slow_first_trial, max_failures=3)
    trials = _run(tiny_grid)
    assert len(failures) == 3
    _complete_once(trials)
    assert [t.state for t in trials].count(TrialState.FAIL) == 0 and len(trials) == 4


def test_lost_heartbeat_stops_the_trial_unrecorded_and_it_is_rerun(tiny_grid, monkeypatch, slow_first_trial):
    failures = _inject(monkeypatch, slow_first_trial, max_failures=10**6)
    trials = _run(tiny_grid)
    assert len(failures) >= 2
    _complete_once(trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and read_record(failed[0]) is None  # judged stale, never recorded
    assert point_of(failed[0]) == 0 and len(trials) == 5
