"""Choosing among curve forms, checking extrapolation, and comparing two fitted curves at equal compute."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalelab.analysis.fit import (
    Fit,
    FitError,
    Metric,
    fit_curve,
    get_form,
    validate_points,
)

# The forms that extrapolated best in the LCDB studies (Mohr et al. 2022) and in our synthetic checks;
# wbl4 and exp3 converge faster than any power law and are opt-in.
DEFAULT_FORMS: tuple[str, ...] = ("pow2", "pow3", "pow4", "mmf4")
Criterion = Literal["extrapolation", "aicc"]


@dataclass(frozen=True, eq=False)
class ExtrapolationCheck:
    """A fit on the smaller points and how it did on the largest held-out ones.

    ``table`` has one row per held-out point: compute, observed, predicted, abs_error, lower, upper
    (the predictive bootstrap interval at ``level``) and covered.
    """

    fit: Fit
    table: pd.DataFrame
    mae: float
    max_abs_error: float
    coverage: float
    level: float


def select_form(
    compute: ArrayLike,
    values: ArrayLike,
    forms: Sequence[str] = DEFAULT_FORMS,
    *,
    metric: Metric = "error",
    criterion: Criterion = "extrapolation",
    folds: int = 2,
    tolerance: float = 0.1,
    n_starts: int = 8,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[Fit, pd.DataFrame]:
    """Fit every form, score it, and refit the chosen one with the bootstrap.

    ``criterion='extrapolation'`` scores a form by forward-chaining: for ``j = 1..folds`` it is fitted
    without the ``j`` largest compute values and scored by the mean absolute error on them; the score is
    the mean over folds. Forms with too many parameters to be fitted on every fold are not eligible, so few
    points favour simple forms. Among eligible forms, the one with fewest parameters whose score is within
    ``(1 + tolerance)`` of the best is chosen; when no form can be scored, the fitted form with fewest
    parameters. ``criterion='aicc'`` picks the lowest AICc instead. The table lists every candidate with
    form, n_params, rmse, aicc, extrapolation_mae, note (why a score is missing) and selected.
    """
    c, v = validate_points(compute, values, metric)
    if not forms:
        raise FitError("no candidate forms given; pass at least one name from FORMS")
    if criterion not in ("extrapolation", "aicc"):
        raise FitError(f"unknown selection criterion {criterion!r}; use 'extrapolation' or 'aicc'")
    if int(folds) != folds or folds < 1:
        raise FitError(f"folds must be a positive integer; got {folds}")
    if not tolerance >= 0:
        raise FitError(f"tolerance must be a non-negative fraction (0.1 = within 10% of the best); got {tolerance}")

    def quick_fit(mask: np.ndarray, name: str) -> Fit:
        return fit_curve(c[mask], v[mask], name, metric=metric, n_starts=n_starts, n_bootstrap=0, seed=seed)

    table = pd.DataFrame([_score(c, v, name, folds, quick_fit) for name in forms])
    chosen = _choose(table, criterion, tolerance)
    table["selected"] = table["form"] == chosen
    fit = fit_curve(c, v, chosen, metric=metric, n_starts=n_starts, n_bootstrap=n_bootstrap, level=level, seed=seed)
    return fit, table


def _score(c: np.ndarray, v: np.ndarray, name: str, folds: int, quick_fit: Callable[[np.ndarray, str], Fit]) -> dict:
    """One table row: in-sample rmse and AICc, and the forward-chaining extrapolation error."""
    n_params = get_form(name).n_params
    row = {"form": name, "n_params": n_params, "rmse": np.nan, "aicc": np.nan, "extrapolation_mae": np.nan,
           "note": ""}
    distinct = np.unique(c)
    if distinct.size <= n_params:
        row["note"] = f"needs {n_params + 1} different compute values"
        return row
    fit = quick_fit(np.ones(c.size, dtype=bool), name)
    row.update(rmse=fit.rmse, aicc=_aicc(fit.rmse, c.size, n_params))
    if distinct.size - folds <= n_params:
        row["note"] = f"needs {n_params + folds + 1} different compute values for the extrapolation score"
        return row
    errors = []
    for j in range(1, folds + 1):
        train = c < distinct[-j]
        errors.append(np.mean(np.abs(quick_fit(train, name).predict(c[~train]) - v[~train])))
    row["extrapolation_mae"] = float(np.mean(errors))
    return row


def _aicc(rmse: float, n: int, n_params: int) -> float:
    """AICc of a least-squares fit, counting the noise variance as a parameter; inf when undefined."""
    k = n_params + 1
    if n - k - 1 <= 0:
        return float("inf")
    return float(n * np.log(max(rmse, 1e-12) ** 2) + 2 * k + 2 * k * (k + 1) / (n - k - 1))


def _choose(table: pd.DataFrame, criterion: str, tolerance: float) -> str:
    fitted = table[table["rmse"].notna()]
    if fitted.empty:
        raise FitError(f"too few different compute values to fit any of {', '.join(table['form'])}; add points")
    if criterion == "aicc":
        return str(fitted.loc[fitted["aicc"].idxmin(), "form"])
    scored = fitted[fitted["extrapolation_mae"].notna()]
    if scored.empty:
        return str(fitted.sort_values("n_params", kind="stable").iloc[0]["form"])
    good = scored[scored["extrapolation_mae"] <= (1.0 + tolerance) * scored["extrapolation_mae"].min()]
    return str(good.sort_values("n_params", kind="stable").iloc[0]["form"])


def extrapolation_check(
    compute: ArrayLike,
    values: ArrayLike,
    form: str = "pow3",
    *,
    holdout: int = 2,
    metric: Metric = "error",
    n_starts: int = 8,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> ExtrapolationCheck:
    """Fit on all but the ``holdout`` largest compute values and score the predictions there.

    ``form='auto'`` runs :func:`select_form` on the smaller points, so the choice is part of what is checked.
    """
    c, v = validate_points(compute, values, metric)
    distinct = np.unique(c)
    if int(holdout) != holdout or not 1 <= holdout < distinct.size - 1:
        raise FitError(f"holdout must be an integer from 1 to {distinct.size - 2} (number of different compute "
                       f"values minus 2); got {holdout}")
    train = c < distinct[-holdout]
    if form == "auto":
        fit, _ = select_form(c[train], v[train], metric=metric, n_starts=n_starts, n_bootstrap=n_bootstrap,
                             level=level, seed=seed)
    else:
        fit = fit_curve(c[train], v[train], form, metric=metric, n_starts=n_starts, n_bootstrap=n_bootstrap,
                        level=level, seed=seed)
    table = _holdout_table(fit, c[~train], v[~train], level)
    return ExtrapolationCheck(
        fit=fit,
        table=table,
        mae=float(table["abs_error"].mean()),
        max_abs_error=float(table["abs_error"].max()),
        coverage=float(table["covered"].mean()) if fit.n_bootstrap else float("nan"),
        level=level,
    )


def _holdout_table(fit: Fit, c: np.ndarray, v: np.ndarray, level: float) -> pd.DataFrame:
    predicted = fit.predict(c)
    lower, upper = fit.band(c, level, predictive=True) if fit.n_bootstrap else (np.full(c.size, np.nan),) * 2
    return pd.DataFrame({
        "compute": c, "observed": v, "predicted": predicted, "abs_error": np.abs(predicted - v),
        "lower": lower, "upper": upper, "covered": (lower <= v) & (v <= upper),
    })


def compare_at_equal_compute(fit_a: Fit, fit_b: Fit, compute: ArrayLike, level: float = 0.95) -> pd.DataFrame:
    """Predicted metric of two fits at the same compute, with a bootstrap interval on ``a - b``.

    Replicate ``i`` of one fit is paired with replicate ``i`` of the other; the fits come from independent
    data, so the pairs are draws of the difference. ``p_a_better`` is the share of pairs in which ``a``
    is better (lower error or loss, higher accuracy).
    """
    if fit_a.metric != fit_b.metric:
        raise FitError(f"cannot compare a {fit_a.metric} fit with a {fit_b.metric} fit; fit both on one metric")
    n = min(fit_a.n_bootstrap, fit_b.n_bootstrap)
    if n == 0:
        raise FitError("both fits need bootstrap replicates to compare; refit with n_bootstrap > 0")
    c = np.atleast_1d(np.asarray(compute, dtype=float))
    sims_a, sims_b = fit_a.replicates(c)[:n], fit_b.replicates(c)[:n]
    diff = sims_a - sims_b
    tail = 50.0 * (1.0 - level)
    better = diff > 0 if fit_a.metric == "accuracy" else diff < 0
    pred_a, pred_b = fit_a.predict(c), fit_b.predict(c)
    return pd.DataFrame({
        "compute": c,
        "a": pred_a,
        "b": pred_b,
        "diff": pred_a - pred_b,
        "lower": np.percentile(diff, tail, axis=0),
        "upper": np.percentile(diff, 100.0 - tail, axis=0),
        "p_a_better": better.mean(axis=0),
    })
