"""A whole study's budget (``budget``): parsed or refused up front, counted from the storage, never
overrun by a trial started near its end, and raised on resume to go on where the study stopped."""

import sys

import optuna
import pytest
from optuna.trial import TrialState

from scalelab.errors import SearchError
from scalelab.search import build, run_study
from scalelab.cli import main
from scalelab.search.budget import parse_budget, trials_within
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
