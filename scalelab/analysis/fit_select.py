"""Choosing among curve forms, checking extrapolation, and comparing two fitted curves at equal compute."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalelab.analysis.fit import (
    Fit,
    FitError,
    FoldScore,
    Metric,
    build_fit,
    fit_curve,
    get_form,
    with_horizon,
    holdout_folds,
    score_fold,
    validate_points,
)
from scalelab.analysis.fit import (
    _prepare as prepare_points,
)
from scalelab.analysis.fit_solve import fit_point

# Forms with a floor or a plateau that extrapolated well on real learning curves (Mohr et al. 2022, LCDB;
# Alabdulmohsin et al. 2022, whose M4 is ``m4``) plus the pure power law; wbl4 and exp3 converge faster than
# any power law and are opt-in. ``flat`` is always a candidate unless ``allow_flat=False``.
DEFAULT_FORMS: tuple[str, ...] = ("pow2", "pow3", "pow4", "mmf4", "m4")
"""With the default criterion the most general of these the points support is kept (``m4`` from 7
different compute values on with the default held-out distance)."""
Criterion = Literal["general", "extrapolation", "aicc"]
MIN_DISTINCT = 4  # with fewer different compute values no trend can be told from noise (Mann-Kendall at 5%)
GENERAL_POINTS_PER_PARAM = 2
"""``criterion='general'`` needs this many different compute values per parameter of the most general form;
with fewer, forms are chosen by their forward-fold extrapolation scores instead."""


@dataclass(frozen=True, eq=False)
class ExtrapolationCheck:
    """A fit on the smaller points and how it did on the largest held-out ones.

    ``table`` has one row per held-out point: compute, observed, predicted, abs_error, lower, upper
    (the calibrated predictive interval at ``level``) and covered.
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
    criterion: Criterion = "general",
    folds: int = 2,
    tolerance: float = 0.1,
    n_starts: int = 8,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
    horizon: float | None = None,
    allow_flat: bool = True,
) -> tuple[Fit, pd.DataFrame]:
    """Fit every form, score it on held-out stretches as long as the extrapolation asked for, and keep one.

    ``criterion='general'`` (the default, given at least :data:`GENERAL_POINTS_PER_PARAM` different compute
    values per parameter of the most general form; ``'extrapolation'`` below that) keeps the most general
    form the points support: the one with most parameters that can still be fitted on the first held-out
    fold (ties, such as pow4 and mmf4, go to the lower held-out score). On real learning curves a held-out
    stretch of a few noisy points tells nested forms apart less reliably than the general form (``m4``
    contains ``mmf4`` and, as its plateau moves before the data, ``pow3``) fits them; the folds still
    calibrate its intervals.
    ``criterion='extrapolation'`` scores a form by forward folds (see :func:`fit_curve`): fitted without
    the points within the held-out distance of each fold's end, it is scored by the RMSE of
    log(prediction) - log(truth) on them; the distance is the log-compute distance from the data to
    ``horizon`` (a quarter of the data's range when None; at most half). Forms that cannot be fitted on
    every fold are not eligible, so few points favour simple forms. Among eligible forms, the one with
    fewest parameters whose score is within ``(1 + tolerance)`` of the best is chosen. ``flat`` (no trend)
    is a candidate unless ``allow_flat`` is false; when only ``flat`` can be scored, or a chosen curve's
    drop is within noise (``Fit.trend == 'flat'``), the answer is the flat fit if allowed. When no form
    can be scored at all, the fitted form with fewest parameters is kept. ``criterion='aicc'`` picks the
    lowest AICc instead. The table lists every candidate with form, n_params, rmse, aicc,
    extrapolation_log_rmse, extrapolation_mae (held-out mean absolute error, metric units), note (why a
    score is missing) and selected.

    Fewer than four different compute values, or too few for any form, raise :class:`FitError`: no
    trend can be told from noise there.
    """
    c, v = validate_points(compute, values, metric)
    if not forms:
        raise FitError("no candidate forms given; pass at least one name from FORMS")
    if criterion not in ("general", "extrapolation", "aicc"):
        raise FitError(f"unknown selection criterion {criterion!r}; use 'general', 'extrapolation' or 'aicc'")
    if int(folds) != folds or folds < 1:
        raise FitError(f"folds must be a positive integer; got {folds}")
    if not tolerance >= 0:
        raise FitError(f"tolerance must be a non-negative fraction (0.1 = within 10% of the best); got {tolerance}")
    names = list(dict.fromkeys([*(["flat"] if allow_flat else []), *forms]))
    specs = [get_form(name) for name in names]
    distinct = np.unique(c).size
    if distinct < MIN_DISTINCT or all(distinct <= spec.n_params for spec in specs if spec.name != "flat"):
        raise FitError(f"too few different compute values to extrapolate ({distinct}); a trend needs at least "
                       f"{max(MIN_DISTINCT, min(s.n_params for s in specs) + 1)} for any of "
                       f"{', '.join(n for n in names if n != 'flat' or len(names) == 1)}; add points")

    trending_params = [spec.n_params for spec in specs if spec.name != "flat"]
    if criterion == "general" and trending_params and distinct < GENERAL_POINTS_PER_PARAM * max(trending_params):
        criterion = "extrapolation"  # too few points to pin the general form down: let held-out scores choose

    rng = np.random.default_rng(seed)
    candidates: dict[str, tuple] = {}
    scored: dict[str, list[FoldScore]] = {}
    rows = {}
    for spec in specs:
        row = {"form": spec.name, "n_params": spec.n_params, "rmse": np.nan, "aicc": np.nan,
               "extrapolation_log_rmse": np.nan, "extrapolation_mae": np.nan, "first_fold_log_rmse": np.nan,
               "note": ""}
        rows[spec.name] = row
        if distinct <= spec.n_params:
            row["note"] = f"needs {spec.n_params + 1} different compute values"
            continue
        pts, distance = with_horizon(prepare_points(c, v, metric, spec), horizon)
        best = fit_point(spec, pts, n_starts, rng)
        fitted = spec.evaluate(best.theta, pts.t)
        rmse = float(np.sqrt(np.mean((fitted - pts.y) ** 2)))
        row.update(rmse=rmse, aicc=_aicc(rmse, pts.t.size, spec.n_params))
        candidates[spec.name] = (spec, pts, best, holdout_folds(pts, distance, folds, spec.n_params))

    def scores_of(name: str) -> list[FoldScore]:
        if name not in scored:
            spec, pts, best, fold_list = candidates[name]
            scored[name] = [score_fold(spec, pts, fold, n_starts, rng, best.theta) for fold in fold_list]
        return scored[name]

    # With the default criterion only the most general forms that reach the first fold need scores.
    ranked = sorted(candidates, key=lambda name: -candidates[name][0].n_params)
    top = None
    for name in ranked:
        spec, _, _, fold_list = candidates[name]
        if criterion == "general" and (name == "flat" or (top is not None and spec.n_params < top)):
            rows[name]["note"] = rows[name]["note"] or "not scored: a more general form was kept"
            continue
        scores = scores_of(name)
        if scores and scores[0].index == 0:
            rows[name]["first_fold_log_rmse"] = scores[0].log_rmse
            top = spec.n_params if top is None else top
        if len(fold_list) < folds:
            which = "every" if fold_list else "any"
            rows[name]["note"] = f"too few points before the held-out stretch for {which} fold"
            continue
        rows[name]["extrapolation_log_rmse"] = float(np.mean([s.log_rmse for s in scores]))
        rows[name]["extrapolation_mae"] = float(np.mean([s.mae for s in scores]))
    table = pd.DataFrame(list(rows.values()))
    chosen = _choose(table, criterion, tolerance)

    def build(name: str) -> Fit:
        spec, pts, best, _ = candidates[name]
        return build_fit(spec, pts, best, scores_of(name), metric=metric, level=level, n_bootstrap=n_bootstrap,
                         seed=seed)

    fit = build(chosen)
    if fit.trend == "flat" and allow_flat and chosen != "flat":
        note = fit.note
        fit = dataclasses.replace(build("flat"), note=note + "; fitted as flat")
        chosen = "flat"
    table["selected"] = table["form"] == chosen
    return fit, table


def _aicc(rmse: float, n: int, n_params: int) -> float:
    """AICc of a least-squares fit, counting the noise variance as a parameter; inf when undefined."""
    k = n_params + 1
    if n - k - 1 <= 0:
        return float("inf")
    return float(n * np.log(max(rmse, 1e-12) ** 2) + 2 * k + 2 * k * (k + 1) / (n - k - 1))


def _choose(table: pd.DataFrame, criterion: str, tolerance: float) -> str:
    fitted = table[table["rmse"].notna()]
    if criterion == "aicc":
        return str(fitted.loc[fitted["aicc"].idxmin(), "form"])
    if criterion == "general":
        trending = fitted[fitted["form"] != "flat"]
        folded = trending[trending["first_fold_log_rmse"].notna()]
        pool = folded if not folded.empty else trending
        if pool.empty:
            return str(fitted.iloc[0]["form"])
        top = pool[pool["n_params"] == pool["n_params"].max()]
        key = "first_fold_log_rmse" if not folded.empty else "rmse"
        return str(top.loc[top[key].idxmin(), "form"])
    scored = fitted[fitted["extrapolation_log_rmse"].notna()]
    trending = fitted[fitted["form"] != "flat"]
    if scored.empty or (scored["form"] == "flat").all():
        # Nothing with a trend could be scored: keep the simplest trending form; the trend test decides
        # whether it stays or becomes flat.
        return str((trending if not trending.empty else fitted).sort_values("n_params", kind="stable").iloc[0]["form"])
    score = scored["extrapolation_log_rmse"]
    good = scored[score <= (1.0 + tolerance) * score.min() + 1e-9]  # below 1e-9 scores are rounding
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
