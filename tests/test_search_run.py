"""Studies end to end through the library, on tiny networks and data: grid, baseline search (reward and
Pareto, caps, pruning), sweep; resuming, and a trial interrupted by Ctrl-C."""

import dataclasses
import json

import optuna
import pytest
from optuna.trial import TrialState

from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.arch.zoo import make_spec
from scalelab.data import load_dataset, split_validation
from scalelab.errors import SearchError
from scalelab.search import build, run_study
from scalelab.search.points import point
from scalelab.search.storage import open_storage, storage_url
from scalelab.search.study import point_of
from scalelab.search.trial import Objective

pytestmark = pytest.mark.usefixtures("one_thread")

TRIAL_ATTRS = {"spec", "params", "flops", "latency_ms", "curve", "val_acc", "test_acc", "split", "wall_s",
               "device", "images_per_s", "kind", "dimension", "depth", "width", "resolution", "alpha", "beta",
               "gamma", "phi", "epochs", "dataset", "reason"}


def _study(options, name=None):
    storage = open_storage(storage_url(options.storage, options.run_dir), create=False)
    return optuna.load_study(study_name=name or options.study, storage=storage)


@pytest.fixture
def skeleton(tmp_path):
    """A two-stage MBConv skeleton at 16 px, near the middle of its search space, saved as JSON."""
    spec = NetworkSpec(name="tiny", stem=StemSpec(16, 3, 1), resolution=16, num_classes=10, head=HeadSpec(64),
                       stages=(StageSpec("mbconv", 1, 32, 1, 3, 4.0), StageSpec("mbconv", 2, 48, 2, 5, 4.0, 0.25)))
    path = tmp_path / "tiny.json"
    path.write_text(spec.to_json())
    return str(path)


def test_grid_study_trains_each_point_once_records_everything_and_resumes(tiny_grid):
    config, options = build({**tiny_grid, "study": "g"})
    summary = run_study(config, options)
    study = _study(options)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(point_of(t) for t in trials) == [0, 1, 2, 3]
    a = trials[0].user_attrs
    assert TRIAL_ATTRS <= set(a) and a["kind"] == "grid" and a["split"] == "val" and a["dimension"] == "compound"
    assert a["alpha"] == a["depth"] == 1.0 and a["phi"] == 1.0 and a["reason"] is None
    assert len(a["curve"]) == 1 and a["curve"][0]["images_seen"] == 64 and a["epochs"] > 0
    assert a["flops"] / study.user_attrs["baseline_flops"] == pytest.approx(a["measured_ratio"])
    assert study.user_attrs["kind"] == "grid" and study.user_attrs["settings"]["search"]["target"] == "2x"
    saved = json.loads(summary.files[0].read_text())
    best = max(trials, key=lambda t: t.value)
    assert (saved["alpha"], saved["beta"], saved["gamma"]) == (best.user_attrs["alpha"], best.user_attrs["beta"],
                                                              best.user_attrs["gamma"])
    text = summary.text()
    assert "predicted x" in text and "measured x" in text and "1 off-target" in text and "Best: alpha=1" in text

    again = run_study(config, options)  # resume: nothing left to do, nothing re-run
    assert [t.datetime_complete for t in _study(options).get_trials()] == [t.datetime_complete for t in trials]
    assert again.data["alpha"] == saved["alpha"]


def test_resuming_with_other_settings_is_refused_and_changes_nothing(tiny_grid):
    one_point = {**tiny_grid, "study": "g", "search": {**tiny_grid["search"], "beta": [1.4, 1.4], "gamma": [1, 1]}}
    config, options = build(one_point)
    run_study(config, options)
    before = [(t.number, t.state, t.value) for t in _study(options).get_trials()]
    assert len(before) == 1
    other, _ = build({**one_point, "train": {**tiny_grid["train"], "epochs": 2}})
    with pytest.raises(SearchError, match=r"made with other settings \(train.epochs: 1 -> 2\)"):
        run_study(other, options)
    assert [(t.number, t.state, t.value) for t in _study(options).get_trials()] == before


def test_interrupted_trial_is_failed_requeued_and_rerun_on_resume(tiny_grid, monkeypatch):
    from scalelab.search import trial as trial_module

    real_train, calls = trial_module.train, []

    def flaky_train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(trial_module, "train", flaky_train)
    config, options = build({**tiny_grid, "study": "g"})
    with pytest.raises(KeyboardInterrupt):
        run_study(config, options)
    trials = _study(options).get_trials()
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE, TrialState.FAIL]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING and point_of(retry[0]) == point_of(trials[1])
    first = (trials[0].number, trials[0].value, trials[0].datetime_complete)

    monkeypatch.setattr(trial_module, "train", real_train)
    run_study(config, options)
    trials = _study(options).get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(point_of(t) for t in done) == [0, 1, 2, 3]  # every point once, none twice
    assert (done[0].number, done[0].value, done[0].datetime_complete) == first


def test_baseline_search_reward_keeps_caps_and_saves_best(tiny_study, skeleton):
    config, options = build({**tiny_study, "kind": "baseline", "study": "b", "evaluate_test": True,
                             "model": {"name": skeleton},
                             "search": {"trials": 5, "max_flops": "3x", "target": "1x"}})
    summary = run_study(config, options)
    study = _study(options)
    cap = study.user_attrs["resolved"]["max_flops"]
    assert cap == 3 * study.user_attrs["baseline_flops"]
    trials = study.get_trials()
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.PRUNED}  # (seeded) some over the cap
    assert len(trials) == 5 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    for t in trials:
        over = t.user_attrs["flops"] > cap
        assert (t.state == TrialState.PRUNED) == over
        assert ("over --max-flops" in (t.user_attrs["reason"] or "")) == over
        assert (t.user_attrs.get("curve") is None) == over  # over the cap: never trained
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert done and all(t.user_attrs["test_acc"] is not None for t in done)
    best = max(done, key=lambda t: t.value)
    a = best.user_attrs
    assert best.value == pytest.approx(a["val_acc"] * (a["flops"] / (cap / 3)) ** -0.07)
    assert NetworkSpec.from_json(summary.files[0].read_text()) == NetworkSpec.from_dict(a["spec"])
    assert "Best: trial" in summary.text() and "Operator" in summary.text()
    run_study(config, options)  # resume: the trial count is reached, nothing re-runs
    assert len(_study(options).get_trials()) == 5


def test_memory_cap_ends_trials_before_training_and_never_retries_them(tiny_study, skeleton):
    config, options = build({**tiny_study, "kind": "baseline", "study": "m", "model": {"name": skeleton},
                             "search": {"trials": 2, "max_memory": "1K"}})
    for _ in range(2):
        with pytest.raises(SearchError, match="no trial of study 'm' finished training"):
            run_study(config, options)
    trials = _study(options).get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.PRUNED for t in trials)
    assert all("over --max-memory" in t.user_attrs["reason"] and t.user_attrs["train_memory_bytes"] > 1000
               for t in trials)


def test_pareto_search_on_latency_keeps_the_front(tiny_study, skeleton):
    config, options = build({**tiny_study, "kind": "baseline", "study": "p", "model": {"name": skeleton},
                             "search": {"trials": 3, "objective": "pareto", "cost": "latency"}})
    summary = run_study(config, options)
    study = _study(options)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    front = study.user_attrs["pareto_front"]
    assert front == sorted(front, key=lambda n: study.trials[n].values[1]) and front
    assert all(study.trials[n].values[1] == study.trials[n].user_attrs["latency_ms"] > 0 for n in front)
    saved = json.loads(summary.files[0].read_text())
    assert [r["trial"] for r in saved] == front and "ms" in summary.text()


def test_pruner_stops_a_trial_below_the_median_but_not_at_its_last_epoch(tiny_study):
    s = split_validation(load_dataset("cifar10-mini"), 0.04, 0)
    splits = dataclasses.replace(s, train=(s.train[0][:96], s.train[1][:96]))  # 3 batches of 32 an epoch
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for _ in range(2):
        study.add_trial(optuna.create_trial(value=1.0, intermediate_values={1: 1.0, 2: 1.0}))
    study.set_user_attr("plan", [point(make_spec("baseline_convnet", num_classes=10, width=0.25,
                                                 resolution=16)).to_dict()])

    def objective(epochs):
        config, _ = build({**tiny_study, "kind": "grid", "train": {**tiny_study["train"], "epochs": epochs,
                                                                     "max_images": None}})
        return Objective(study, config, splits, "cpu")

    with pytest.raises(optuna.TrialPruned):  # after epoch 1 of 2, below the others' 100%
        objective(2)(study.ask())
    a = study.trials[-1].user_attrs
    assert "pruned after epoch 1.00" in a["reason"] and len(a["curve"]) == 1 and a["epochs"] == 1.0
    assert 0 <= objective(1)(study.ask()) <= 1  # as far below, but at its last epoch: done, not pruned
    assert study.trials[-1].user_attrs["reason"] is None


def test_sweep_records_dimension_and_multipliers(tiny_study):
    config, options = build({**tiny_study, "kind": "sweep", "study": "s",
                             "search": {"multiples": [1, 2], "dimensions": ["width", "resolution"]}})
    summary = run_study(config, options)
    rows = {t.user_attrs["dimension"]: t.user_attrs for t in _study(options).get_trials()}
    assert set(rows) == {None, "width", "resolution"}
    assert rows["width"]["width"] == pytest.approx(2**0.5) and rows["width"]["depth"] == 1.0
    assert rows["resolution"]["spec"]["resolution"] == round(16 * 2**0.5)
    assert rows[None]["alpha"] is None and rows["width"]["kind"] == "sweep"
    assert "resolution" in summary.text() and "val acc" in summary.text()

