"""Faults as a careful user causes them: Ctrl-C (once, or again and again until the command exits),
SIGTERM to a multi-worker command, SIGKILL of one worker, SIGKILL of the whole command while it queues,
trains or is between trials (then resumed), two commands started together on one study. Each checks the
exit code, the messages and the storage afterwards."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from scalelab.search.study import point_of

STUDY = "sig"
INTERRUPTED_EPOCHS = "50"
"""For commands the test interrupts: far more training than it waits through, so that on a loaded machine, where
the test polls the storage late, the command cannot finish before a trial is seen running."""


def _command(tmp_path, *extra, epochs="1"):
    run_dir = tmp_path / "runs"
    args = [sys.executable, "-m", "scalelab", "grid", "--study", STUDY, "--run-dir", str(run_dir), "--device", "cpu",
            "--no-progress", "--base", "baseline_convnet", "--base-width", "0.25", "--base-resolution", "16",
            "--val-fraction", "0.04", "--epochs", epochs, "--batch-size", "32", "--alpha", "1:1", "--beta", "1:1.5",
            "--gamma", "1:1.5", "--measured-tolerance", "0.15", "--heartbeat", "1", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True), f"sqlite:///{run_dir / 'scalelab.db'}"


def _trials(url):
    if not os.path.exists(url.removeprefix("sqlite:///")):
        raise FileNotFoundError(url)  # plain Optuna would create it, racing the command that does
    return optuna.load_study(study_name=STUDY, storage=url).get_trials()


def _wait_running(url, proc, count=1, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if sum(t.state == TrialState.RUNNING for t in _trials(url)) >= count:
                return
        except Exception:  # the storage or study does not exist yet
            pass
        time.sleep(0.2)
    raise AssertionError("no trial started")


def _assert_requeued(url):
    trials = _trials(url)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert interrupted and all(
        any(w.state == TrialState.WAITING and point_of(w) == point_of(t) for w in trials) for t in interrupted)


@pytest.mark.parametrize("repeated", [False, True], ids=["once", "until it exits"])
def test_ctrl_c_requeues_the_trial_and_exits_130(tmp_path, repeated):
    proc, url = _command(tmp_path, epochs=INTERRUPTED_EPOCHS)
    _wait_running(url, proc)
    proc.send_signal(signal.SIGINT)
    while repeated and proc.poll() is None:  # later presses fall in the clean-up and in the exit itself
        time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("interrupted: running trials were queued again")
    assert "Traceback" not in err
    _assert_requeued(url)


def test_sigterm_to_the_group_stops_every_worker_and_exits_143(tmp_path):
    proc, url = _command(tmp_path, "--workers", "2", epochs=INTERRUPTED_EPOCHS)
    _wait_running(url, proc, count=2)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err
    _assert_requeued(url)
    deadline = time.monotonic() + 10  # no orphans (multiprocessing's resource tracker exits last, on its own)
    while subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "processes of the command outlived it"
        time.sleep(0.2)


def test_worker_killed_by_sigkill_is_survived_and_the_study_reported(tmp_path):
    proc, url = _command(tmp_path, "--workers", "2")
    _wait_running(url, proc, count=2)
    children = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], capture_output=True,
                              text=True).stdout.split()  # the workers, not multiprocessing's resource tracker
    os.kill(int(children[0]), signal.SIGKILL)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "was killed; finishing its work in this process" in err and "Trials saved:" in out
    trials = _trials(url)
    complete = Counter(point_of(t) for t in trials if t.state == TrialState.COMPLETE)
    assert sorted(complete) == [0, 1, 2, 3] and set(complete.values()) == {1}
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_two_commands_started_together_train_every_point_once(tmp_path):
    commands = [_command(tmp_path, "--max-images", "64") for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p, _ in commands]
    assert [p.returncode for p, _ in commands] == [0, 0], outputs
    assert not any("Traceback" in err for _, err in outputs)
    trials = _trials(commands[0][1])
    complete = Counter(point_of(t) for t in trials if t.state == TrialState.COMPLETE)
    assert sorted(complete) == [0, 1, 2, 3] and set(complete.values()) == {1}  # none trained twice
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def _wait_for(url, proc, ready, timeout=120):
    """Poll the storage until ``ready(trials)`` holds (the study may not exist yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if ready(_trials(url)):
                return
        except Exception:  # the storage or study does not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError("the moment to kill at never came")


MOMENTS = {  # when to kill, and the training images per trial that leave time to see that moment
    "queueing": (lambda trials: len(trials) > 0, "64"),  # the study exists: its points are being queued or just were
    "training": (lambda trials: any(t.state == TrialState.RUNNING for t in trials), "1280"),  # about 0.5 s a trial
    "between trials": (lambda trials: any(t.state == TrialState.COMPLETE for t in trials), "640"),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_sigkill_of_the_command_at_any_moment_loses_and_repeats_nothing_on_resume(tmp_path, moment):
    ready, images = MOMENTS[moment]
    proc, url = _command(tmp_path, "--max-images", images)
    _wait_for(url, proc, ready)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = {point_of(t) for t in _trials(url) if t.state == TrialState.COMPLETE}
    again, _ = _command(tmp_path, "--max-images", images)
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0 and "Traceback" not in err, err
    trials = _trials(url)
    complete = Counter(point_of(t) for t in trials if t.state == TrialState.COMPLETE)
    assert sorted(complete) == [0, 1, 2, 3] and set(complete.values()) == {1}  # each point once, the killed run's kept
    assert before <= set(complete)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
