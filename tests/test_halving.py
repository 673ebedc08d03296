"""Successive halving over enumerated studies: rungs, decisions checked on simulated curves whose truth
is known, and a real study that records every decision."""

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from scalelab.analysis.results import results_table
from scalelab.errors import SearchError
from scalelab.report import write_site
from scalelab.search import build, run_study
from scalelab.search.halving import HalvingPruner, HalvingSettings, decisions
from scalelab.search.kinds.enumerated import POINT_ATTR
from scalelab.search.record import study_records


def test_rungs_are_geometric_and_below_the_budget():
    assert HalvingSettings(rate=3, min_epochs=1).rungs(27) == [1, 3, 9]
    assert HalvingSettings(rate=2, min_epochs=2).rungs(17) == [2, 4, 8, 16]
    assert HalvingSettings().rungs(1) == []


@pytest.mark.parametrize("bad, message", [({"rate": 1}, "rate"), ({"min_epochs": 0}, "min_epochs"),
                                          ({"level": 1.0}, "level")])
def test_bad_settings_are_refused(bad, message):
    with pytest.raises(SearchError, match=message):
        HalvingSettings(**bad)


def _curve(ceiling: float, rate: float, epochs: int, rng: np.random.Generator, noise: float) -> list[float]:
    """Validation accuracy of a network saturating at ``ceiling``, with measurement noise."""
    return [float(np.clip(0.1 + (ceiling - 0.1) * (1 - math.exp(-rate * e)) + rng.normal(0, noise), 0, 1))
            for e in range(1, epochs + 1)]


def _annealed(ceiling: float, rate: float, epochs: int, rng: np.random.Generator, noise: float) -> list[float]:
    """A curve whose error halves in the last epochs, as the learning rate decays: its saturating error
    (towards ``ceiling``) times 1 - 0.5 (epoch / epochs)^3. It ends at 1 - (1 - ceiling) / 2."""
    return [float(np.clip(1 - (0.9 - (ceiling - 0.1) * (1 - math.exp(-rate * e))) * (1 - 0.5 * (e / epochs) ** 3)
                          + rng.normal(0, noise), 0, 1)) for e in range(1, epochs + 1)]


def _simulate(ceilings: list[float], epochs: int, seed: int, noise: float = 0.005, points: list[int] | None = None,
              shape=_curve):
    """A study whose trials report the given curves (``shape``) in turn, judged by the halving pruner;
    ``points`` says which network each trial is a replicate of (default: each its own). Returns (epochs
    each trial trained, the study)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize",
                                pruner=HalvingPruner(HalvingSettings(rate=3, min_epochs=1), epochs))
    trained = []
    for i, ceiling in enumerate(ceilings):
        trial = study.ask()
        if points is not None:
            trial.set_user_attr(POINT_ATTR, points[i])
        curve = shape(ceiling, 0.35, epochs, rng, noise)
        for step, value in enumerate(curve, start=1):
            trial.report(value, step)
            if step < epochs and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
        trained.append(step)
    return trained, study


@pytest.mark.parametrize("seed", range(2))
def test_the_best_network_is_never_stopped_and_clearly_worse_ones_are(seed):
    rng = np.random.default_rng(100 + seed)
    ceilings = list(rng.uniform(0.4, 0.7, size=8)) + [0.85]
    order = rng.permutation(len(ceilings))
    ceilings = [ceilings[i] for i in order]
    trained, study = _simulate(ceilings, epochs=27, seed=seed)
    best = int(np.argmax(ceilings))
    assert trained[best] == 27  # trained to the end
    assert sum(trained) < 0.8 * 27 * len(ceilings)  # worse networks stopped early save trial-epochs
    for d in decisions(study):
        if not d.promoted:
            assert ceilings[d.trial] < max(ceilings[: d.trial + 1])  # stopped only behind a better one seen


def test_an_unlucky_seed_of_the_leading_network_is_judged_with_its_other_seeds():
    """Six networks, three seeds each, queued seed by seed; the best network's second seed saturates 25
    points lower than its others, below three of the other networks."""
    networks = [0.8, 0.62, 0.6, 0.58, 0.55, 0.5]
    ceilings, points = [], []
    for replicate in range(3):
        for point, ceiling in enumerate(networks):
            ceilings.append(ceiling - 0.25 if (point, replicate) == (0, 1) else ceiling)
            points.append(point)
    trained, study = _simulate(ceilings, epochs=27, seed=0, points=points)
    assert [trained[i] for i, p in enumerate(points) if p == 0] == [27, 27, 27]
    unlucky = [d for d in decisions(study) if d.trial == len(networks)]
    assert unlucky and all(d.promoted and d.replicates == 2 and d.network_score > d.score for d in unlucky)
    assert "its network's mean over 2 replicates" in unlucky[0].why
    alone, _ = _simulate(ceilings, epochs=27, seed=0)  # the same trials judged one by one
    assert alone[len(networks)] < 27


def test_a_networks_upper_end_carries_the_seed_to_seed_spread():
    from scalelab.search.halving import network_bounds

    bounds = network_bounds({"a": [(0.60, 0.60), (0.62, 0.62), (0.58, 0.58)], "b": [(0.50, 0.50)],
                             "c": [(0.40, 0.70)]}, level=0.95)
    t = 2.919986  # one-sided 95% t quantile, 2 degrees of freedom (a's spread: sd 0.02)
    assert bounds["a"] == pytest.approx((0.60, 0.60 + t * 0.02 / np.sqrt(3)))
    assert bounds["b"] == pytest.approx((0.50, 0.50 + t * 0.02))  # one seed: the pooled spread, undivided
    assert bounds["c"] == pytest.approx((0.40, 0.70))  # its curves' own interval is wider
    assert network_bounds({"a": [(0.6, 0.6)], "b": [(0.5, 0.55)]}, 0.95) == {"a": (0.6, 0.6), "b": (0.5, 0.55)}


def _judged_at_rung_one(means: list[float], seeds: int, noise: float, rng: np.random.Generator) -> dict[int, bool]:
    """Synchronous halving's judgement of one rung over networks whose seeds score their true mean plus
    normal noise: network -> promoted."""
    from scalelab.search.halving import judge_rung, wait_at_rung
    from scalelab.search.kinds.enumerated import REPLICATE_ATTR

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    trials = []
    for replicate in range(seeds):
        for point, mean in enumerate(means):
            trial = study.ask()
            trial.set_user_attr(POINT_ATTR, point)
            trial.set_user_attr(REPLICATE_ATTR, replicate)
            trial.report(float(mean + noise * rng.standard_normal()), 1)
            trials.append(trial)
    for trial in trials:  # after every ask: ask() would take a waiting trial
        wait_at_rung(study._storage, trial._trial_id, 1)
    found = judge_rung(study, HalvingSettings(enabled=True, synchronous=True), budget_epochs=9)
    points = {t.number: t.user_attrs[POINT_ATTR] for t in study.get_trials()}
    promoted = {points[d.trial]: d.promoted for d in found}
    assert len(found) == len(means) * seeds and all(promoted[points[d.trial]] == d.promoted for d in found)
    assert decisions(study) == sorted(found, key=lambda d: d.trial)  # the promoted, waiting again, included
    return promoted


def test_synchronous_halving_keeps_networks_that_seed_noise_cannot_tell_apart():
    """Nine networks, three seeds each, 2-point seed-to-seed noise: four share the best true accuracy, so
    the best third (three) cannot hold them all by the means alone; the seeds' spread keeps them. Networks
    ten points lower are stopped every time."""
    rng = np.random.default_rng(0)
    means = [0.6, 0.6, 0.6, 0.6, 0.5, 0.5, 0.48, 0.45, 0.4]
    draws = [_judged_at_rung_one(means, seeds=3, noise=0.02, rng=rng) for _ in range(60)]
    wrongly_stopped = np.mean([not all(d[p] for p in range(4)) for d in draws])
    assert wrongly_stopped <= 0.15
    assert all(not any(d[p] for p in range(4, 9)) for d in draws)
    alone = [_judged_at_rung_one(means, seeds=1, noise=0.02, rng=rng) for _ in range(20)]
    assert all(sum(d[p] for p in range(4)) == 3 for d in alone)  # one seed each: no spread, the best three go on


def test_a_decision_holds_its_reason_and_interval():
    _, study = _simulate([0.8, 0.75, 0.7, 0.4, 0.3], epochs=27, seed=0)
    found = decisions(study)
    stopped = [d for d in found if not d.promoted]
    assert stopped and all(d.threshold is not None and d.upper < d.threshold for d in stopped)
    late = [d for d in found if d.rung == 9]
    assert late and all(d.extrapolated and d.lower <= d.score <= d.upper for d in late)
    assert "stopped" in stopped[0].why and f"epoch {stopped[0].rung}" in stopped[0].why


def test_finished_peers_predict_an_annealed_end_the_curve_alone_misses():
    """Under a decaying learning rate the first trials (no peers yet) are judged on their own curves, which
    miss the late fall of the error; once three have finished, a trial's end is predicted from their
    ratios of error (end / rung)."""
    ceilings = [0.7, 0.66, 0.74, 0.6, 0.69, 0.72, 0.64, 0.7]
    ends = [1 - (1 - c) / 2 for c in ceilings]
    _, study = _simulate(ceilings, epochs=27, seed=0, shape=_annealed)
    at_9 = [d for d in decisions(study) if d.rung == 9]
    alone = [abs(d.score - ends[d.trial]) for d in at_9 if d.peers == 0 and d.extrapolated]
    by_peers = [d for d in at_9 if d.peers >= 3]
    assert alone and min(alone) > 0.04  # the power law on 9 of 27 epochs sees little of the decay
    assert len(by_peers) >= 3
    assert all(abs(d.score - ends[d.trial]) < 0.015 for d in by_peers)
    assert np.mean([d.lower <= ends[d.trial] <= d.upper for d in by_peers]) >= 0.75
    assert "from the curves of" in by_peers[0].why


def test_a_study_with_halving_records_and_summarises_its_decisions(learning_study, tmp_path):
    # 250 training images per epoch (a ninth of the 2,250): four epochs of four small networks in seconds
    settings = {**learning_study, "kind": "compare", "study": "h", "halving": {"enabled": True, "rate": 2},
                "train_fraction": 1 / 9, "train": {**learning_study["train"], "epochs": 4.0, "max_images": None},
                "search": {"models": ["baseline_convnet@16", "fast_convnet@16", "baseline_convnet@8",
                                      "fast_convnet@8"]}}
    summary = run_study(*build(settings))
    text = summary.text()
    assert "Halving at epoch 1:" in text and "Trial-epochs:" in text
    study = optuna.load_study(study_name="h", storage=f"sqlite:///{learning_study['run_dir']}/scalelab.db")
    records = study_records(study)
    assert len(records) == 4 and {d.rung for d in decisions(study)} == {1, 2}
    for r in records:
        if r.status.value == "pruned":
            assert r.reason.startswith("stopped by successive halving") and r.outcome.epochs < 4
    pruned = [r for r in records if r.status.value == "pruned"]
    assert pruned  # the first network (baseline_convnet at 16 px) learns most; others judged against it stop
    write_site(results_table(study._storage), tmp_path / "report")
    (page,) = (tmp_path / "report").glob("study-*.html")
    html = page.read_text()
    assert "Stopped early" in html and html.count("stopped by successive halving") == len(pruned)


def _four_networks(learning_study, name, halving):
    """Four small networks, four epochs of 250 images each: a compare study that runs in seconds."""
    return {**learning_study, "kind": "compare", "study": name, "halving": halving, "train_fraction": 1 / 9,
            "train": {**learning_study["train"], "epochs": 4.0, "max_images": None},
            "search": {"models": ["baseline_convnet@16", "fast_convnet@16", "baseline_convnet@8", "fast_convnet@8"]}}


def test_synchronous_halving_judges_every_network_at_each_rung_and_continues_the_best(learning_study):
    url = f"sqlite:///{learning_study['run_dir']}/scalelab.db"
    text = run_study(*build(_four_networks(learning_study, "sync", {"enabled": True, "rate": 2,
                                                                   "synchronous": True}))).text()
    run_study(*build(_four_networks(learning_study, "full", {"enabled": False})))
    sync, full = (optuna.load_study(study_name=n, storage=url) for n in ("sync", "full"))
    found = decisions(sync)
    assert sorted(d.rung for d in found) == [1, 1, 1, 1, 2, 2]  # every network judged at rung 1, not only the last
    assert all(d.reached == (4 if d.rung == 1 else 2) for d in found)
    at_one = {d.trial: d.score for d in found if d.rung == 1}
    best_two = sorted(at_one, key=at_one.get, reverse=True)[:2]
    assert {d.trial for d in found if d.rung == 1 and d.promoted} >= set(best_two)
    records = {r.number: r for r in study_records(sync)}
    assert {r.status.value for r in records.values()} <= {"complete", "pruned"}  # none left waiting
    (winner,) = [r for r in records.values() if r.status.value == "complete"]
    assert [round(p.epoch) for p in winner.curve] == [1, 2, 3, 4]
    # training that waited at two rungs and went on from its checkpoints ends exactly as training straight
    straight = {r.spec.name: r for r in study_records(full)}[winner.spec.name]
    assert [p.val_acc for p in winner.curve] == [p.val_acc for p in straight.curve]
    assert winner.outcome.wall_s >= winner.curve[-1].wall_s  # the times of all three stretches, not the last one's
    assert "(2x fewer)" in text  # 4 networks x 1 epoch + 2 x 1 + 1 x 2 = 8 of 16
    assert not any((Path(learning_study["run_dir"]) / "checkpoints" / "sync").glob("*.pt"))


def test_a_trial_interrupted_under_synchronous_halving_goes_on_from_its_last_epoch(learning_study, monkeypatch):
    from scalelab.search import trial as trial_module

    real_train, trained, interrupted = trial_module.train, [], []

    def interrupted_at_epoch_3(*args, on_epoch, **kwargs):
        def spy(epoch):
            trained.append(round(epoch.epoch))
            if round(epoch.epoch) == 3 and not interrupted:
                interrupted.append(True)
                raise KeyboardInterrupt
            on_epoch(epoch)
        return real_train(*args, on_epoch=spy, **kwargs)

    monkeypatch.setattr(trial_module, "train", interrupted_at_epoch_3)
    config, options = build(_four_networks(learning_study, "sync", {"enabled": True, "rate": 2, "synchronous": True}))
    with pytest.raises(KeyboardInterrupt):
        run_study(config, options)
    assert trained[-1] == 3 and sorted(trained) == [1, 1, 1, 1, 2, 2, 3]
    trained.clear()
    run_study(config, options)
    assert trained == [4]  # the retry went on from the state saved after epoch 3
    monkeypatch.setattr(trial_module, "train", real_train)
    run_study(*build(_four_networks(learning_study, "full", {"enabled": False})))
    url = f"sqlite:///{learning_study['run_dir']}/scalelab.db"
    (winner,) = [r for r in study_records(optuna.load_study(study_name="sync", storage=url))
                 if r.status.value == "complete"]
    straight = {r.spec.name: r for r in study_records(optuna.load_study(study_name="full", storage=url))}
    assert [p.val_acc for p in winner.curve] == [p.val_acc for p in straight[winner.spec.name].curve]


def test_synchronous_halving_keeps_checkpoints_where_every_worker_sees_them(monkeypatch, tmp_path):
    from scalelab.search.halving import CHECKPOINT_ENV, checkpoint_dir

    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert checkpoint_dir("sqlite:///runs/scalelab.db", "s") == Path("runs/checkpoints/s")
    with pytest.raises(SearchError, match=f"set {CHECKPOINT_ENV}"):
        checkpoint_dir("postgresql://host/db", "s")
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path))
    assert checkpoint_dir("postgresql://host/db", "s") == tmp_path / "s"


def test_halving_is_refused_for_a_sampled_search(tiny_study):
    with pytest.raises(SearchError, match="--halving applies to studies of listed networks"):
        build({**tiny_study, "kind": "baseline", "halving": {"enabled": True}})


def test_replaying_halving_on_curves_whose_winner_is_clear_keeps_it_and_saves_epochs():
    from scalelab.search.halving_replay import ReplayCurve, replay

    rng = np.random.default_rng(0)
    ceilings = [0.85, 0.6, 0.55, 0.5, 0.45, 0.4, 0.62, 0.58, 0.5]
    curves = [ReplayCurve(f"net{i}", tuple(_curve(c, 0.35, 9, rng, 0.005))) for i, c in enumerate(ceilings)]
    result = replay(curves, HalvingSettings(enabled=True), orders=20)
    assert result.winner == "net0" and all(result.same_winner) and max(result.loss) == 0.0
    assert len(result.trial_epochs) == 20 and np.median(result.trial_epochs) < result.full_trial_epochs == 81
    assert "the same winner in 20 of 20 orders" in result.text()
    with pytest.raises(SearchError, match="same number of epochs"):
        replay([*curves, ReplayCurve("short", (0.3, 0.4))], HalvingSettings(enabled=True))
    synchronous = replay(curves, HalvingSettings(enabled=True, synchronous=True), orders=20)
    # every network to epoch 1, the best 3 of 9 to epoch 3, the best of those to 9: 9 + 3 x 2 + 1 x 6
    assert synchronous.trial_epochs == (21,) and synchronous.same_winner == (True,)
    assert "21, 3.86x fewer than in full" in synchronous.text()


def test_bench_halving_replays_a_committed_study_and_refuses_one_stopped_early(tmp_path):
    import shutil
    from pathlib import Path

    from typer.testing import CliRunner

    from scalelab.cli import app

    storage = tmp_path / "seed.sqlite"
    shutil.copy(Path(__file__).resolve().parents[1] / "docs" / "results" / "seed-cpu.sqlite", storage)
    run = CliRunner().invoke
    ok = run(app, ["bench", "halving", "--storage", str(storage), "--study", "cifar10-grid-2x-cpu-full",
                   "--orders", "10"])
    assert ok.exit_code == 0, ok.output
    assert "7 trials of 7 networks, 9 epochs each: 63 trial-epochs" in ok.output and "replayed in 10 orders" in ok.output
    sync = run(app, ["bench", "halving", "--storage", str(storage), "--study", "cifar10-grid-2x-cpu-full", "--sync",
                     "--json"])
    assert sync.exit_code == 0, sync.output
    replayed = json.loads(sync.output)
    # the seed's grid on real CIFAR-10: synchronous halving keeps the winner with at least 3x fewer trial-epochs
    assert replayed["same_winner_per_order"] == [True] and replayed["trial_epochs_per_order"][0] <= 63 / 3
    stopped = run(app, ["bench", "halving", "--storage", str(storage), "--study", "cifar10-grid-2x-cpu-halving"])
    assert stopped.exit_code == 2 and "trained to the end" in stopped.output
    missing = run(app, ["bench", "halving", "--storage", str(storage), "--study", "grid"])
    assert missing.exit_code == 2 and "no study 'grid'" in missing.output
