"""Studies read with Optuna's public API alone, as optuna-dashboard and Optuna's plots read them: real
parameters on every trial, metric names, per-epoch intermediate values and parameter importances."""

import warnings

import optuna
import pytest
from optuna.trial import TrialState

from scalelab.search import build, read_record, run_study
from scalelab.search.storage import storage_url

pytestmark = pytest.mark.usefixtures("one_thread")


def _study(options):
    return optuna.load_study(study_name=options.study, storage=storage_url(options.storage, options.run_dir))


def _two_epochs(settings):
    """Two whole epochs (no image cap), so that every curve has two points; on a small training split
    (most images validate) so that they take little time."""
    return {**settings, "val_fraction": 0.9, "train": {**settings["train"], "epochs": 2, "max_images": None}}


def test_grid_trials_carry_alpha_beta_gamma_and_their_curves(tiny_grid):
    config, options = build({**_two_epochs(tiny_grid), "study": "grid"})
    run_study(config, options)
    study = _study(options)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert study.metric_names == ["val_acc"]
    assert len(trials) == 4
    assert {tuple(t.params) for t in trials} == {("alpha", "beta", "gamma")}
    for t in trials:
        record = read_record(t)
        p = record.point
        assert (t.params["alpha"], t.params["beta"], t.params["gamma"]) == (p.alpha, p.beta, p.gamma)
        assert sorted(t.intermediate_values) == [1, 2]  # one value per epoch
        assert t.intermediate_values[2] == pytest.approx(record.outcome.val_acc) == pytest.approx(t.value)
        assert len(t.user_attrs["model"]) < 1024 and "spec" not in t.user_attrs  # nothing the dashboard cuts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importance = optuna.importance.get_param_importances(study)
    assert set(importance) <= {"alpha", "beta", "gamma"} and {"beta", "gamma"} <= set(importance)


def test_sweep_trials_carry_dimension_and_multiple(tiny_study):
    settings = {**_two_epochs(tiny_study), "kind": "sweep", "study": "sweep",
                "search": {"multiples": [1, 2], "dimensions": ["width", "resolution"]}}
    config, options = build(settings)
    run_study(config, options)
    study = _study(options)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert study.metric_names == ["val_acc"]
    assert sorted((t.params["dimension"], t.params["multiple"]) for t in trials) == [
        ("base", 1.0), ("resolution", 2.0), ("width", 2.0)]
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)
    dims = {t.params["dimension"]: read_record(t).point.dimension for t in trials}
    assert dims == {"base": None, "resolution": "resolution", "width": "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importance = optuna.importance.get_param_importances(study)
    assert set(importance) == {"dimension", "multiple"}
