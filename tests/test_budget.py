"""A whole study's budget (``budget``): parsed or refused up front, counted from the storage, never
overrun by a trial started near its end, and raised on resume to go on where the study stopped."""

import optuna
import pytest
from optuna.trial import TrialState

from scalelab.errors import SearchError
from scalelab.search import build, run_study
from scalelab.search.budget import parse_budget
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


def test_an_epoch_budget_stops_the_study_and_a_larger_one_resumes_it(tiny_grid):
    """Four one-epoch networks; a budget of 2 trial-epochs trains two, leaves two queued, says so."""
    config, options = build({**tiny_grid, "study": "budget", "budget": "2 epochs"})
    summary = run_study(config, options)
    study = optuna.load_study(study_name="budget",
                              storage=open_storage(storage_url(options.storage, options.run_dir), create=False))
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.WAITING) == 2
    assert ("Budget 2 epochs: 2 trial-epochs used of 2 trial-epochs; 2 trial(s) not run: re-run with a larger "
            "--budget to train them") in summary.text()
    config, options = build({**tiny_grid, "study": "budget", "budget": "4 epochs"})
    summary = run_study(config, options)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 4
    assert "Budget 4 epochs: 4 trial-epochs used of 4 trial-epochs" in summary.text()
    assert "not run" not in summary.text()
