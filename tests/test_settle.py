"""Grid studies that stop adding seeds once their question is settled (``settle_after``): the rule on
known accuracies, the workers leaving the unneeded replicates untrained (recorded, and kept so on resume),
and the settings refused up front."""

import dataclasses

import optuna
import pytest
from optuna.trial import TrialState

from scalelab.analysis.results import judged_levels
from scalelab.arch.zoo import get_preset
from scalelab.errors import SearchError
from scalelab.search import Status, TrialRecord, build, get_kind, run_study
from scalelab.search.kinds.enumerated import NOT_NEEDED_ATTR, SETTLED_ATTR
from scalelab.search.record import Outcome, Point, Provenance, TrialCost, study_records
from scalelab.search.storage import open_storage, storage_url
from scalelab.search.study import replicate_of

pytestmark = pytest.mark.usefixtures("one_thread")


def _records(accuracy):
    """Complete grid records: network index -> accuracy of each replicate (replicate k: seed k)."""
    base = get_preset("baseline_convnet", 10)
    out = []
    for i, accs in accuracy.items():
        spec = dataclasses.replace(base, name=f"net{i}")
        for k, acc in enumerate(accs):
            out.append(TrialRecord(study="s", number=len(out), kind="grid", dataset="cifar10-mini", spec=spec,
                                   cost=TrialCost(1000, 10_000 + i), status=Status.COMPLETE,
                                   provenance=Provenance("0", None, None, "cpu", 1, k),
                                   point=Point(alpha=1.0, beta=1.0 + i / 10, gamma=1.0),
                                   outcome=Outcome(val_acc=acc, val_images=1000), replicate=k))
    return out


def _config(tiny_grid, **settings):
    return build({**tiny_grid, **settings})[0]


def test_the_grid_is_settled_once_its_winner_is_separated(tiny_grid):
    config = _config(tiny_grid, seeds=6, settle_after=3)
    grid = get_kind("grid")
    clear = _records({0: [0.50, 0.52, 0.51], 1: [0.40, 0.41, 0.41], 2: [0.30, 0.33, 0.31]})
    why = grid.settled(config, None, clear)
    assert why.startswith("the winner was separated from every other network after 3 seeds")
    assert "alpha=1, beta=1.1, gamma=1" in why  # the closest rival, named by its coefficients
    close = _records({0: [0.50, 0.53, 0.51], 1: [0.49, 0.51, 0.50], 2: [0.30, 0.33, 0.31]})
    assert grid.settled(config, None, close) is None


def test_each_look_is_at_a_stricter_level_so_stopping_early_keeps_the_claim(tiny_grid):
    """A gap separated at 95% with one look is not yet separated when four looks share the 5%."""
    records = _records({0: [0.50, 0.52, 0.51], 1: [0.48, 0.488, 0.484]})  # gap 7.5 standard errors
    assert get_kind("grid").settled(_config(tiny_grid, seeds=3, settle_after=2), None, records) is not None
    assert get_kind("grid").settled(_config(tiny_grid, seeds=5, settle_after=2), None, records) is None


def test_replicates_not_needed_are_left_untrained_recorded_and_stay_so_on_resume(tiny_grid, monkeypatch):
    monkeypatch.setattr(type(get_kind("grid")), "settled", lambda self, config, plan, records: "settled here")
    config, options = build({**tiny_grid, "study": "settle", "seeds": 3, "settle_after": 2})
    summary = run_study(config, options)
    study = optuna.load_study(study_name="settle",
                              storage=open_storage(storage_url(options.storage, options.run_dir), create=False))
    trials = study.get_trials()
    late = [t for t in trials if replicate_of(t) == 2]
    assert len(late) == 4 and all(t.state == TrialState.PRUNED and t.user_attrs[NOT_NEEDED_ATTR] for t in late)
    assert sorted(replicate_of(t) for t in trials if t.state == TrialState.COMPLETE) == [0] * 4 + [1] * 4
    third = [r for r in study_records(study) if r.replicate == 2]  # recorded, never trained
    assert [(r.status, r.outcome.epochs, r.reason) for r in third] == [
        (Status.PRUNED, 0.0, "not trained: settled here")] * 4
    assert study.user_attrs[SETTLED_ATTR] == "settled here"
    assert ("Seeds past the first 2 not needed: settled here; 4 queued replicate(s) not trained"
            in summary.text())
    run_study(config, options)  # resuming queues nothing again
    assert len(study.get_trials()) == len(trials)
    # The report judges the winner at the level the study used: 95% shared between its two looks.
    assert judged_levels(storage_url(options.storage, options.run_dir)) == {"settle": pytest.approx(0.975)}


@pytest.mark.parametrize("settings, message", [
    ({"seeds": 3, "settle_after": 1}, "--settle-after must be at least 2"),
    ({"seeds": 3, "settle_after": 3}, r"and below --seeds \(3\), got 3"),
    ({"seeds": 1, "settle_after": 2}, r"and below --seeds \(1\)"),
])
def test_settle_after_needs_a_spread_and_seeds_left_to_save(tiny_grid, settings, message):
    with pytest.raises(SearchError, match=message):
        _config(tiny_grid, **settings)


def test_settle_after_applies_to_kinds_that_ask_a_question(tiny_study, tmp_path):
    spec = tmp_path / "net.json"
    spec.write_text(get_preset("baseline_convnet", 10).to_json())
    compare = {**tiny_study, "kind": "compare", "search": {"models": [str(spec), "baseline_convnet"]}}
    with pytest.raises(SearchError, match="--settle-after applies to grid and sweep studies"):
        build({**compare, "seeds": 3, "settle_after": 2})
    sweep = {**tiny_study, "kind": "sweep", "search": {"multiples": [1, 2], "dimensions": ["width"]}}
    assert build({**sweep, "seeds": 3, "settle_after": 2})[0].judged_at(0.95) == pytest.approx(0.975)


def _sweep_records(accuracy):
    """Complete sweep records: (dimension, FLOPs multiple) -> accuracy of each replicate (replicate k: seed
    k); dimension None is the base network."""
    base = get_preset("baseline_convnet", 10)
    out = []
    for (dim, k), accs in accuracy.items():
        spec = dataclasses.replace(base, name=f"{dim or 'base'}-x{k:g}")
        for rep, acc in enumerate(accs):
            out.append(TrialRecord(study="s", number=len(out), kind="sweep", dataset="cifar10-mini", spec=spec,
                                   cost=TrialCost(1000, round(10_000 * k)), status=Status.COMPLETE,
                                   provenance=Provenance("0", None, None, "cpu", 1, rep),
                                   point=Point(dimension=dim, multiple=k),
                                   outcome=Outcome(val_acc=acc, val_images=1000), replicate=rep))
    return out


def test_a_sweep_is_settled_once_compound_against_every_dimension_has_a_verdict(tiny_study):
    """Width clearly ahead of compound at both multiples (seed noise a few tenths of a point): settled after
    three seeds; the same sweep with resolution on compound's curve leaves that comparison open."""
    sweep = {**tiny_study, "kind": "sweep", "search": {"multiples": [1, 2, 4], "dimensions": ["width", "compound"]}}
    config = build({**sweep, "seeds": 6, "settle_after": 3})[0]
    noise = (0.0, 0.004, -0.003)
    curve = {None: [0.60], "width": [0.75, 0.80], "compound": [0.70, 0.76]}
    flops = {None: [1.0], "width": [1.9, 3.7], "compound": [2.4, 5.2]}
    accuracy = {(dim, k): [acc + e for e in noise] for dim in curve for k, acc in zip(flops[dim], curve[dim])}
    why = get_kind("sweep").settled(config, None, _sweep_records(accuracy))
    assert why.startswith("compound against every single dimension decided after 3 seeds (width: width more "
                          "accurate (")
    open_ = {**accuracy, **{("resolution", k): [acc + e for e in noise[::-1]]
                            for k, acc in zip((2.2, 4.6), curve["compound"])}}
    assert get_kind("sweep").settled(config, None, _sweep_records(open_)) is None


