"""Studies end to end through the library, on tiny networks and data: grid, baseline search (reward and
Pareto, caps, pruning), sweep; resuming, and a trial interrupted by Ctrl-C."""

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch
from conftest import LEARNING_TRAIN_IMAGES
from optuna.trial import TrialState

from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.data import load_dataset, split_validation
from scalelab.errors import SearchError
from scalelab.search import Status, build, get_kind, read_record, run_study
from scalelab.search.kinds.enumerated import POINT_ATTR
from scalelab.search.kinds.sweep import nearer_line, scaled_network
from scalelab.search.record import SCHEMA, dashboard_attrs, study_records
from scalelab.search.storage import open_storage, storage_url
from scalelab.search.study import create_or_resume, point_of, read_config, read_plan
from scalelab.search.trial import Objective

pytestmark = pytest.mark.usefixtures("one_thread")


def _study(options, name=None):
    storage = open_storage(storage_url(options.storage, options.run_dir), create=False)
    return optuna.load_study(study_name=name or options.study, storage=storage)


def _check_dashboard(trial, record):
    """The short copy of the record in the trial's user attributes (what optuna-dashboard shows)."""
    short = dashboard_attrs(record)
    assert {k: trial.user_attrs.get(k) for k in short} == short


def _check_curve_reported(trial, record, value=lambda acc: acc):
    """Every epoch of the curve is an intermediate value of the trial (single-objective studies): its
    validation accuracy, or what ``value`` makes of it (a baseline search's reward)."""
    expected = {i: value(e.val_acc) for i, e in enumerate(record.curve, start=1)}
    assert trial.intermediate_values.keys() == expected.keys() and record.curve
    assert list(trial.intermediate_values.values()) == pytest.approx(list(expected.values()))


@pytest.fixture
def skeleton(tmp_path):
    """A two-stage MBConv skeleton at 16 px, near the middle of its search space, saved as JSON."""
    spec = NetworkSpec(name="tiny", stem=StemSpec(16, 3, 1), resolution=16, num_classes=10, head=HeadSpec(64),
                       stages=(StageSpec("mbconv", 1, 32, 1, 3, 4.0), StageSpec("mbconv", 2, 48, 2, 5, 4.0, 0.25)))
    path = tmp_path / "tiny.json"
    path.write_text(spec.to_json())
    return str(path)


@pytest.fixture
def small_skeleton(tmp_path):
    """A smaller two-stage MBConv skeleton (868 K multiply-adds at 16 px) for searches that must learn:
    its sampled networks train a full epoch in about a third of the time of :func:`skeleton`'s."""
    spec = NetworkSpec(name="small", stem=StemSpec(8, 3, 1), resolution=16, num_classes=10, head=HeadSpec(32),
                       stages=(StageSpec("mbconv", 1, 16, 1, 3, 4.0), StageSpec("mbconv", 1, 24, 2, 3, 4.0)))
    path = tmp_path / "small.json"
    path.write_text(spec.to_json())
    return str(path)


def test_grid_study_trains_each_point_once_records_everything_and_resumes(learning_grid):
    config, options = build({**learning_grid, "study": "g"})
    summary = run_study(config, options)
    study = _study(options)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(point_of(t) for t in trials) == [0, 1, 2, 3]
    plan = read_plan(study)
    assert study.metric_names == ["val_acc"] and study.user_attrs["schema"] == SCHEMA
    assert study.user_attrs["settings"]["search"]["target"] == "2x" and read_config(study) == config
    assert plan.facts["multiple"] == 2.0 and len(plan.networks) == 4
    records = [read_record(t) for t in trials]
    for t, r in zip(trials, records):
        p = r.point
        assert r.kind == "grid" and r.status is Status.COMPLETE and r.finished and r.reason is None
        assert r.number == t.number and r.study == "g" and r.dataset == "cifar10-mini"
        assert t.params == {"alpha": p.alpha, "beta": p.beta, "gamma": p.gamma}  # Optuna sees the real point
        assert p == plan.networks[point_of(t)].point and r.spec == plan.networks[point_of(t)].spec
        assert p.dimension == "compound" and p.alpha == p.scale.depth == 1.0 and p.phi == 1.0
        assert p.multiple == 2.0 and p.predicted_ratio == pytest.approx(p.alpha * p.beta**2 * p.gamma**2)
        assert len(r.curve) == 1 and r.curve[0].images_seen == LEARNING_TRAIN_IMAGES and r.outcome.epochs > 0
        assert r.outcome.val_images == 250 and r.at_chance is False  # learned: a best point exists
        assert r.outcome.val_acc == t.value == r.curve[-1].val_acc and r.outcome.wall_s > 0
        assert r.cost.flops / plan.base_flops == pytest.approx(p.measured_ratio)
        assert r.provenance.device == "cpu" and r.provenance.seed == config.train.seed
        _check_dashboard(t, r)
        _check_curve_reported(t, r)
    saved = json.loads(summary.files[0].read_text())
    best = get_kind("grid").best(config, plan, records)
    assert best.outcome.val_acc == max(t.value for t in trials)
    assert (saved["alpha"], saved["beta"], saved["gamma"], saved["trial"]) == (
        best.point.alpha, best.point.beta, best.point.gamma, best.number)
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
    with pytest.raises(SearchError, match=r"made with other settings \(train.epochs: 1.0 -> 2.0\)"):
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
    failed = read_record(trials[1])
    assert failed.status is Status.FAILED and failed.reason == "KeyboardInterrupt" and not failed.finished
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING and point_of(retry[0]) == point_of(trials[1])
    assert retry[0].params == trials[1].params
    assert read_record(retry[0]) is None  # the failed trial's record, inherited by the copy, is not its own
    assert [(r.number, r.status) for r in study_records(_study(options))] == [(0, Status.COMPLETE),
                                                                              (1, Status.FAILED)]
    first = (trials[0].number, trials[0].value, trials[0].datetime_complete)

    monkeypatch.setattr(trial_module, "train", real_train)
    run_study(config, options)
    trials = _study(options).get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(point_of(t) for t in done) == [0, 1, 2, 3]  # every point once, none twice
    assert (done[0].number, done[0].value, done[0].datetime_complete) == first
    assert all(read_record(t).status is Status.COMPLETE and read_record(t).number == t.number for t in done)


def test_baseline_search_reward_keeps_caps_and_saves_best(learning_study, small_skeleton):
    config, options = build({**learning_study, "kind": "baseline", "study": "b", "evaluate_test": True,
                             "base": {"name": small_skeleton},
                             "search": {"trials": 3, "max_flops": "3x", "target": "1x"}})
    summary = run_study(config, options)
    study = _study(options)
    plan = read_plan(study)
    cap = plan.facts["max_flops"]
    assert cap == 3 * plan.base_flops and plan.facts["target"] == plan.base_flops
    assert study.metric_names == ["reward"]
    trials = study.get_trials()
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.PRUNED}  # (seeded) some over the cap
    assert len(trials) == 3 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    records = [read_record(t) for t in trials]
    for t, r in zip(trials, records):
        over = r.cost.flops > cap
        assert r.point is None and r.kind == "baseline" and t.params  # the sampler's own parameters
        assert (t.state == TrialState.PRUNED) == over == (r.status is Status.OVER_CAP)
        assert ("over --max-flops" in (r.reason or "")) == over
        assert (r.curve == ()) == over and (r.outcome.val_acc is None) == over  # over the cap: never trained
        _check_dashboard(t, r)
        if not over:
            _check_curve_reported(t, r, lambda acc: acc * (r.cost.flops / plan.facts["target"]) ** -0.07)
    done = [r for t, r in zip(trials, records) if t.state == TrialState.COMPLETE]
    assert len(done) >= 2 and all(r.outcome.test_acc is not None and r.status is Status.COMPLETE for r in done)
    assert not any(r.at_chance for r in done)  # learned: the best is chosen by reward, not by chance
    best_trial = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    best = get_kind("baseline").best(config, plan, records)
    assert best.number == best_trial.number
    assert best_trial.value == pytest.approx(best.outcome.val_acc * (best.cost.flops / (cap / 3)) ** -0.07)
    assert NetworkSpec.from_json(summary.files[0].read_text()) == best.spec
    assert "Best: trial" in summary.text() and "Operator" in summary.text()
    run_study(config, options)  # resume: the trial count is reached, nothing re-runs
    assert len(_study(options).get_trials()) == 3


def test_memory_cap_ends_trials_before_training_and_never_retries_them(tiny_study, skeleton):
    config, options = build({**tiny_study, "kind": "baseline", "study": "m", "base": {"name": skeleton},
                             "search": {"trials": 2, "max_memory": "1K"}})
    for _ in range(2):
        with pytest.raises(SearchError, match="no trial of study 'm' finished training"):
            run_study(config, options)
    trials = _study(options).get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.PRUNED for t in trials)
    records = [read_record(t) for t in trials]
    assert all(r.status is Status.OVER_CAP and "over --max-memory" in r.reason and r.curve == ()
               and r.cost.train_memory_bytes > 1000 for r in records)


def test_pareto_search_on_latency_keeps_the_front(learning_study, small_skeleton):
    config, options = build({**learning_study, "kind": "baseline", "study": "p", "base": {"name": small_skeleton},
                             "search": {"trials": 3, "objective": "pareto", "cost": "latency"}})
    summary = run_study(config, options)
    study = _study(options)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_acc", "latency_ms"]
    front = [r["trial"] for r in summary.data["pareto_front"]]
    assert front == sorted(front, key=lambda n: study.trials[n].values[1]) and front
    for n in front:
        r = read_record(study.trials[n])
        assert study.trials[n].values == [r.outcome.val_acc, r.cost.latency_ms] and r.cost.latency_ms > 0
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    for n in front:  # no finished trial is as accurate and faster, or more accurate and as fast
        acc, ms = study.trials[n].values
        assert not any(t.values[0] >= acc and t.values[1] <= ms and t.values != [acc, ms] for t in done)
    saved = json.loads(summary.files[0].read_text())
    assert summary.files[0].name == "pareto.json"
    assert [r["trial"] for r in saved] == front and "ms" in summary.text()


def test_pruner_stops_a_trial_below_the_median_but_not_at_its_last_epoch(tiny_grid, tmp_path):
    s = split_validation(load_dataset("cifar10-mini"), 0.04, 0)
    splits = dataclasses.replace(s, train=(s.train[0][:96], s.train[1][:96]))  # 3 batches of 32 an epoch
    storage = open_storage(f"sqlite:///{tmp_path / 'pruner.db'}")
    study = optuna.create_study(storage=storage, direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for _ in range(2):
        study.add_trial(optuna.create_trial(value=1.0, intermediate_values={1: 1.0, 2: 1.0}))

    def config(epochs):
        return build({**tiny_grid, "train": {**tiny_grid["train"], "epochs": epochs, "max_images": None}})[0]

    kind = get_kind("grid")
    plan = kind.plan(config(1), 10, torch.device("cpu"))
    study.set_user_attr("plan", plan.to_dict())
    for params in kind.queue(config(1), plan)[:2]:
        study.enqueue_trial(params, user_attrs={POINT_ATTR: len(study.trials) - 2})

    def objective(epochs):
        return Objective(study, storage, config(epochs), splits, torch.device("cpu"))

    with pytest.raises(optuna.TrialPruned):  # after epoch 1 of 2, below the others' 100%
        objective(2)(study.ask())
    r = read_record(study.trials[-2])
    assert r.status is Status.PRUNED and "pruned after epoch 1.00" in r.reason
    assert len(r.curve) == 1 and r.outcome.epochs == 1.0 and not r.finished
    assert study.trials[-2].intermediate_values == {1: r.curve[0].val_acc}
    assert 0 <= objective(1)(study.ask()) <= 1  # as far below, but at its last epoch: done, not pruned
    r = read_record(study.trials[-1])
    assert r.reason is None and r.status is Status.COMPLETE and r.finished


def test_sweep_records_dimension_and_multipliers(tiny_study):
    config, options = build({**tiny_study, "kind": "sweep", "study": "s",
                             "search": {"multiples": [1, 2], "dimensions": ["width", "resolution"]}})
    summary = run_study(config, options)
    study = _study(options)
    trials = study.get_trials()
    assert study.metric_names == ["val_acc"] and [t.state for t in trials] == [TrialState.COMPLETE] * 3
    rows = {read_record(t).point.dimension: (t, read_record(t)) for t in trials}
    assert set(rows) == {None, "width", "resolution"}
    (wt, width), (rt, res), (bt, base) = rows["width"], rows["resolution"], rows[None]
    assert width.point.scale.width == pytest.approx(2**0.5) and width.point.scale.depth == 1.0
    assert res.spec.resolution == round(16 * 2**0.5) and res.point.scale.resolution == pytest.approx(2**0.5)
    assert base.point.alpha is None and width.kind == "sweep" and base.point.multiple == 1.0
    assert wt.params == {"dimension": "width", "multiple": 2.0} and bt.params == {"dimension": "base", "multiple": 1.0}
    assert rt.params == {"dimension": "resolution", "multiple": 2.0}
    for t, r in rows.values():
        assert r.status is Status.COMPLETE
        assert r.point.predicted_ratio == pytest.approx(r.point.multiple)
        _check_dashboard(t, r)
        _check_curve_reported(t, r)
    assert "resolution" in summary.text() and "val acc" in summary.text()


def test_a_sweep_grown_on_resume_trains_only_its_new_networks_and_keeps_the_old(tiny_study, capsys):
    settings = {**tiny_study, "kind": "sweep", "study": "s", "search": {"multiples": [1, 2], "dimensions": ["width"]}}
    config, options = build(settings)
    run_study(config, options)
    study = _study(options)
    old_plan, old_trials = read_plan(study), study.get_trials()
    storage = open_storage(storage_url(options.storage, options.run_dir), create=False)
    other_command = Objective.for_study(study, storage, config, torch.device("cpu"))  # holds the old plan

    grown, _ = build({**settings, "search": {"multiples": [1, 2], "dimensions": ["width", "resolution"],
                                             "add": ["compound:2", "width:2"]}})  # width:2 is planned already
    create_or_resume(storage, "s", grown, torch.device("cpu"))
    assert "[s] grown: 2 network(s) added to the plan (baseline_convnet-w0.25-resolution2x (" in capsys.readouterr().err
    plan = read_plan(study)
    assert plan.networks[:len(old_plan.networks)] == old_plan.networks
    assert [n.point.dimension for n in plan.networks[len(old_plan.networks):]] == ["resolution", "compound"]
    trial = study.ask()  # a trial of a network the other command's plan lacks: read again, not refused
    study.tell(trial, other_command(trial))
    run_study(grown, options)

    trials = study.get_trials()
    assert [(t.number, t.datetime_complete) for t in trials[:len(old_trials)]] == [
        (t.number, t.datetime_complete) for t in old_trials]  # nothing trained again
    assert sorted(point_of(t) for t in trials) == list(range(len(plan.networks)))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {read_record(t).point.dimension for t in trials} == {None, "width", "resolution", "compound"}

    shrunk, _ = build({**settings, "search": {"multiples": [1, 2], "dimensions": ["resolution"]}})
    with pytest.raises(SearchError, match=r"search.dimensions: \['width', 'resolution'\] -> \['resolution'\].*may be extended"):
        run_study(shrunk, options)


def test_an_open_verdict_between_two_networks_names_the_add_that_lands_nearest_or_says_none_does(tiny_study):
    config, _ = build({**tiny_study, "kind": "sweep", "search": {"multiples": [1, 2, 4], "dimensions": ["compound"]}})
    plan = config.study_kind.plan(config, 10, torch.device("cpu"))
    two, four = (n.cost.flops for n in plan.networks[1:])

    def row(target):
        return SimpleNamespace(bracketed="compound", flops_ref=target)

    middle = (two + four) / 2
    line = nearer_line(config, plan, row(middle))
    k = float(re.search(r"--add compound:([\d.]+) lands", line).group(1))
    landed = scaled_network(config, plan.base, plan.base_flops, "compound", k).cost.flops
    assert 2 < k < 4 and abs(landed - middle) < (four - two) / 2
    assert all(abs(scaled_network(config, plan.base, plan.base_flops, "compound", j).cost.flops - middle)
               >= abs(landed - middle) for j in np.arange(2.05, 4, 0.05))  # none of the others lands nearer
    assert "none between compound 2x and 4x lands nearer" in nearer_line(config, plan, row(two + 1))


def test_a_sweep_summary_says_where_to_add_for_an_open_verdict_in_text_and_json(tiny_study, monkeypatch):
    from scalelab.search.kinds import sweep

    settings = {**tiny_study, "kind": "sweep", "study": "s", "search": {"multiples": [1, 2, 4],
                                                                        "dimensions": ["width", "compound"]}}
    config, options = build(settings)
    run_study(config, options)
    study = _study(options)
    plan = read_plan(study)
    compound = sorted(n.cost.flops for n in plan.networks if n.point.dimension == "compound")
    real = sweep._verdicts

    def open_between_compounds(records, config):  # as if width's 4x network sat between compound's two
        table = real(records, config)
        return table.assign(answered=True, variance="bracket", verdict="none", identical=False,
                            bracketed="compound", flops_ref=sum(compound) / 2)

    monkeypatch.setattr(sweep, "_verdicts", open_between_compounds)
    summary = config.study_kind.summary(study, config, plan, study_records(study), Path(options.run_dir), None)
    line = nearer_line(config, plan, SimpleNamespace(bracketed="compound", flops_ref=sum(compound) / 2))
    assert line.startswith("A compound network nearer ")
    assert line in summary.lines and summary.data["compound_vs_single"][0]["nearer"] == line


def test_a_sweep_made_before_sweeps_grew_adds_networks_of_its_dimensions_only(tiny_study, monkeypatch):
    settings = {**tiny_study, "kind": "sweep", "study": "s", "search": {"multiples": [1, 2], "dimensions": ["width"]}}
    config, options = build(settings)
    kind = type(config.study_kind)
    planned_now = kind.plan
    with monkeypatch.context() as m:  # planned as before: the dimension choices are those of its networks
        m.setattr(kind, "plan", lambda *a: dataclasses.replace(planned_now(*a), facts={}))
        run_study(config, options)
    study = _study(options)
    old = read_plan(study)
    with pytest.raises(SearchError, match=r"records its dimension as one of base, width .*cannot add networks"):
        run_study(build({**settings, "search": {"multiples": [1, 2], "dimensions": ["width", "depth"]}})[0], options)
    assert read_plan(study) == old
    run_study(build({**settings, "search": {"multiples": [1, 2], "dimensions": ["width"], "add": ["width:3"]}})[0],
              options)
    assert sorted(read_record(t).point.multiple for t in study.get_trials()) == [1.0, 2.0, 3.0]


def test_a_training_share_trains_every_network_on_the_same_fewer_images(tiny_grid):
    settings = {**tiny_grid, "train_fraction": 0.1, "train": {**tiny_grid["train"], "max_images": None}}
    config, options = build(settings)
    run_study(config, options)
    n_train = len(split_validation(load_dataset("cifar10-mini"), 0.04, 0, train_fraction=0.1).train[1])
    records = [read_record(t) for t in _study(options).get_trials()]
    assert n_train < 250 and config.train_fraction == 0.1 and read_config(_study(options)).train_fraction == 0.1
    assert [r.curve[-1].images_seen for r in records] == [n_train // 32 * 32] * 4
