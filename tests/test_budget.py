"""A whole study's budget (``budget``): parsed or refused up front, counted from the storage, never
overrun by a trial started near its end, and raised on resume to go on where the study stopped."""

import sys
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.trial import TrialState

from scalelab.errors import SearchError
from scalelab.search import build, run_study
from scalelab.cli import main
from scalelab.search import sizing
from scalelab.search.budget import MAX_SEEDS, parse_budget, seeds_within, trials_within
from scalelab.search.halving import HalvingSettings
from scalelab.search.preview import preview
from scalelab.search.storage import open_storage, storage_url

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("text, amount, unit", [("60m", 3600, "s"), ("1.5h", 5400, "s"), ("900s", 900, "s"),
                                                ("45 min", 2700, "s"), ("200 epochs", 200, "epochs"),
                                                ("1epoch", 1, "epochs")])
def test_budgets_in_time_or_trial_epochs(text, amount, unit):
    budget = parse_budget(text)
    assert (budget.amount, budget.unit, budget.text) == (amount, unit, text)


@pytest.mark.parametrize("text", ["0m", "ten minutes", "60", "-5m", "inf h", "200 images"])
def test_a_budget_that_is_not_one_is_refused(text):
    with pytest.raises(SearchError, match=r"--budget must be a positive time \(60m, 1.5h, 900s\) or trial-epochs"):
        parse_budget(text)


def test_the_plan_and_the_workers_count_a_budget_alike():
    """One more trial starts while what is spent plus the mean trial so far fits."""
    assert trials_within(parse_budget("2 epochs"), [1, 1, 1, 1]) == 2
    assert trials_within(parse_budget("3m"), [60, 60, 600, 60]) == 3  # the third starts: 120 + 60 <= 180 s
    assert trials_within(parse_budget("10h"), [60] * 5) == 5


def test_an_epoch_budget_stops_the_study_and_a_larger_one_resumes_it(tiny_grid):
    """Four networks of 64 training images each (0.027 of an epoch of the 2,400 training images); a budget
    of 0.06 trial-epochs trains two (0.027 + 0.027 + one more would pass it), leaves two queued, says so."""
    config, options = build({**tiny_grid, "study": "budget", "budget": "0.06 epochs"})
    summary = run_study(config, options)
    study = optuna.load_study(study_name="budget",
                              storage=open_storage(storage_url(options.storage, options.run_dir), create=False))
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.WAITING) == 2
    assert ("Budget 0.06 epochs: 0.0533 trial-epochs used of 0.06 trial-epochs; 2 trial(s) not run: re-run with a "
            "larger --budget to train them") in summary.text()
    config, options = build({**tiny_grid, "study": "budget", "budget": "1 epoch"})
    summary = run_study(config, options)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 4
    assert "Budget 1 epoch: 0.107 trial-epochs used of 1 trial-epochs" in summary.text()
    assert "not run" not in summary.text()


def test_plan_says_how_much_of_a_study_a_budget_fits(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["scalelab", "plan", "studies/smoke_grid.toml", "--device", "cpu", "--budget",
                                      "0.06 epochs", "--seeds", "2"])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)  # main returns after a command that succeeded
    out = capsys.readouterr().out
    assert not exit_info.value.code and "4 networks x 2 seeds = 8 trials" in out
    assert ("Budget 0.06 epochs: about 2 of the 8 trials fit (0 whole seed(s) of every network); the rest stay "
            "queued for a re-run with a larger budget") in out
    assert "Seeds the budget fits (--fill-budget): 0: not one trial of every network" in out


def test_the_seeds_a_budget_fits_are_the_most_whose_trials_all_start_within_it():
    """Three networks of one trial-epoch each: 10 epochs start 9 trials seed by seed (3 seeds), not 12."""
    assert seeds_within(parse_budget("10 epochs"), [1.0] * 3) == 3
    assert seeds_within(parse_budget("10 epochs"), [1.0] * 3, at_least=5) == 5  # never fewer than asked
    assert seeds_within(parse_budget("1000 epochs"), [1.0] * 3) == MAX_SEEDS
    assert seeds_within(parse_budget("5m"), [60.0, 90.0]) == 2  # the 5th trial would start at 300 + 75 s


def test_fill_budget_sizes_the_seeds_when_created_and_again_when_the_budget_grows(tiny_grid, capsys):
    """Four networks of 0.027 trial-epochs: 0.25 epochs fit 9 trials (2 whole seeds), 0.35 fit 13 (3)."""
    config, options = build({**tiny_grid, "study": "fill", "budget": "0.25 epochs", "fill_budget": True})
    run_study(config, options)
    study = optuna.load_study(study_name="fill",
                              storage=open_storage(storage_url(options.storage, options.run_dir), create=False))
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 8
    assert study.user_attrs["settings"]["seeds"] == 2
    assert "--fill-budget: 2 seed(s) of each of the 4 networks fit the budget 0.25 epochs" in capsys.readouterr().err
    config, _ = build({**tiny_grid, "budget": "0.1 epochs", "fill_budget": True})  # 4 x 0.027 > 0.1
    assert "1 seed(s) of each of the 4 networks queued, though not all of them fit the budget 0.1 epochs" in (
        sizing.fill_budget(config, None, torch.device("cpu"))[1])
    config, options = build({**tiny_grid, "study": "fill", "budget": "0.35 epochs", "fill_budget": True})
    run_study(config, options)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 12
    assert study.user_attrs["settings"]["seeds"] == 3


def test_fill_budget_in_time_uses_each_networks_measured_seconds(tiny_grid, monkeypatch):
    config, _ = build({**tiny_grid, "budget": "5m", "fill_budget": True})
    specs = [SimpleNamespace(name=n) for n in ("a", "b")]
    monkeypatch.setattr(sizing, "estimate", lambda config, device: SimpleNamespace(
        specs=specs, seconds={"a": 30.0, "b": 45.0}, measured={"a", "b"}, epochs=1.0, share=1.0))
    sized, told = sizing.fill_budget(config, None, torch.device("cpu"))
    assert sized.seeds == 4  # the 8th trial starts at 255 s (+ the 36 s mean <= 300 s); a 9th would not
    assert "4 seed(s) of each of the 2 networks fit the budget 5m (from a measured throughput" in told


def test_halving_is_expected_to_train_a_share_of_every_networks_budget():
    """Rate 3 over 9 epochs: 7 networks all train to epoch 1, 3 go on to 3 and 3 to 9, 31 of 63 trial-epochs
    (the CIFAR-10 grid's halving run trained 30.9); 27 go 27 -> 9 -> 3; no more networks than the rate
    all train in full."""
    halving = HalvingSettings(enabled=True, rate=3)
    assert halving.expected_share(7, 9) * 7 * 9 == pytest.approx(7 + 3 * 2 + 3 * 6)
    assert halving.expected_share(27, 9) * 27 * 9 == pytest.approx(27 + 9 * 2 + 3 * 6)
    assert halving.expected_share(3, 9) == 1.0 and halving.expected_share(7, 1) == 1.0
    synchronous = HalvingSettings(enabled=True, rate=3, synchronous=True)  # every network judged, at least one on
    assert synchronous.expected_share(7, 9) * 7 * 9 == pytest.approx(7 + 3 * 2 + 1 * 6)
    assert synchronous.expected_share(3, 9) * 3 * 9 == pytest.approx(3 + 1 * 2 + 1 * 6)


def test_fill_budget_under_halving_costs_each_trial_at_its_expected_share(tiny_grid):
    settings = {**tiny_grid, "train": {**tiny_grid["train"], "epochs": 9, "max_images": None},
                "budget": "60 epochs", "fill_budget": True}
    plain, _ = build(settings)
    halving, _ = build({**settings, "halving": {"enabled": True}})
    assert sizing.fill_budget(plain, None, torch.device("cpu"))[0].seeds == 1  # a 2nd seed of 4 x 9 epochs: 72
    sized, told = sizing.fill_budget(halving, None, torch.device("cpu"))
    assert sized.seeds == 2  # 4 networks: 4 + 3 x 2 + 3 x 6 = 28 of 36 trial-epochs a seed, 56 for two
    assert "times the 78% of full training successive halving is expected to leave" in told
    planned = preview(halving, torch.device("cpu")).text()
    assert "successive halving: 78% of full training expected, 28 trial-epochs" in planned


def test_fill_budget_needs_a_budget_and_replicable_networks(tiny_grid, tiny_study):
    search = {**tiny_study, "kind": "baseline", "budget": "60m"}
    for settings in ({**tiny_grid, "fill_budget": True}, {**search, "fill_budget": True}):
        with pytest.raises(SearchError, match="--fill-budget sizes the seeds of a grid, family, sweep or comparison"):
            build(settings)
