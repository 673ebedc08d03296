"""Scoring curve extrapolation on learning curves kept in a CSV file (``scalelab bench fit``).

The protocol is that of Alabdulmohsin, Neyshabur and Zhai (2022), "Revisiting Neural Scaling Laws in
Language and Vision": each curve is fitted on its rows marked for fitting (the smaller x) and predicts its
other rows (the larger x); a curve is scored by the RMSE of log(prediction) - log(truth), and a method by the
mean and the median over curves. Beside scalelab's fitter (:func:`scalelab.analysis.fit_select.select_form`
with its defaults, asked for the largest x to be predicted) two simple baselines are scored: the last
training value, and ``E + A * x^-a`` fitted by least squares on log residuals. Each also gives a predictive
interval, scored by the share of held-out rows it holds (mean over curves).

File format: one row per evaluation, with columns for the curve key (any number; a curve is one distinct
combination), x (e.g. examples seen, compute), y (a loss or error, positive, lower is better) and a
training flag (1: fit on this row, 0: predict it). :func:`curves_csv` writes that format from a results
storage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.stats import norm

from scalelab.analysis.fit import FitError
from scalelab.analysis.fit_select import select_form
from scalelab.analysis.peers import predict_from_peers
from scalelab.errors import ScalelabError

KEY_COLUMNS: tuple[str, ...] = ("Domain", "Task", "Model")
X_COLUMN, Y_COLUMN, TRAIN_COLUMN = "Seen Examples", "Loss", "Training"


class BenchError(ScalelabError, ValueError):
    """A benchmark file that cannot be scored."""


@dataclass(frozen=True)
class Curve:
    key: tuple
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def name(self) -> str:
        return " / ".join(str(k) for k in self.key)


@dataclass(frozen=True)
class Prediction:
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    seconds: float
    note: str = ""


Predictor = Callable[[Curve, float], Prediction]


def read_curves(path: str, *, key: Sequence[str] = KEY_COLUMNS, x: str = X_COLUMN, y: str = Y_COLUMN,
                train: str = TRAIN_COLUMN) -> list[Curve]:
    """Curves of a benchmark CSV, in file order; curves without a row to fit or to predict are skipped."""
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in (*key, x, y, train) if c not in table.columns]
    if missing:
        raise BenchError(f"{path} has no column {', '.join(repr(m) for m in missing)}; its columns are "
                         f"{', '.join(map(str, table.columns))} (set the names with --key, --x, --y, --train)")
    for column in (x, y, train):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table = table.dropna(subset=[x, y, train])
    if (table[x] <= 0).any() or (table[y] <= 0).any():
        raise BenchError(f"{x} and {y} must be positive (scores are on log values)")
    curves = []
    for k, group in table.groupby(list(key), sort=False, dropna=False):
        fit_rows, test_rows = group[group[train] == 1], group[group[train] == 0]
        if fit_rows.empty or test_rows.empty:
            continue
        curves.append(Curve(k if isinstance(k, tuple) else (k,), fit_rows[x].to_numpy(float),
                            fit_rows[y].to_numpy(float), test_rows[x].to_numpy(float), test_rows[y].to_numpy(float)))
    if not curves:
        raise BenchError(f"{path} holds no curve with both rows to fit ({train} = 1) and rows to predict ({train} = 0)")
    return curves


def last_value(curve: Curve) -> float:
    """Mean of the training values at the largest training x."""
    return float(curve.y_train[curve.x_train == curve.x_train.max()].mean())


def predict_scalelab(curve: Curve, level: float) -> Prediction:
    """scalelab's default fit; where it refuses to extrapolate, the last value and the refusal as a note."""
    start = time.process_time()
    try:
        fit, _ = select_form(curve.x_train, curve.y_train, metric="loss", horizon=float(curve.x_test.max()),
                             level=level)
    except FitError as exc:
        flat = np.full(curve.x_test.size, last_value(curve))
        nan = np.full(curve.x_test.size, np.nan)
        return Prediction(flat, nan, nan, time.process_time() - start, f"refused: {exc}")
    values = fit.predict(curve.x_test)
    lower, upper = fit.band(curve.x_test, level)
    return Prediction(values, lower, upper, time.process_time() - start, fit.form)


def predict_last_value(curve: Curve, level: float) -> Prediction:
    """The last training value; interval: its log noise (RMS of successive log differences / sqrt 2)."""
    start = time.process_time()
    order = np.argsort(curve.x_train, kind="stable")
    logs = np.log(curve.y_train[order])
    sd = float(np.sqrt(np.mean(np.diff(logs) ** 2) / 2.0)) if logs.size > 1 else math.nan
    value = last_value(curve)
    z = norm.ppf(0.5 + level / 2.0)
    values = np.full(curve.x_test.size, value)
    return Prediction(values, values * np.exp(-z * sd), values * np.exp(z * sd), time.process_time() - start)


def predict_power_law(curve: Curve, level: float) -> Prediction:
    """``E + A * x^-a`` by least squares on log residuals (equal weights, several starting exponents);
    interval: the RMS log residual."""
    start = time.process_time()
    x, y = curve.x_train, curve.y_train
    if np.unique(x).size < 4:
        flat = np.full(curve.x_test.size, last_value(curve))
        nan = np.full(curve.x_test.size, np.nan)
        return Prediction(flat, nan, nan, time.process_time() - start, "refused: fewer than 4 x values")
    t = np.log(x / np.exp(np.mean(np.log(x))))
    logy = np.log(y)

    def resid(p: np.ndarray, tt: np.ndarray = t) -> np.ndarray:
        return np.log(p[0] + p[1] * np.exp(-p[2] * tt)) - logy

    lo, hi = [0.0, 0.0, 0.0], [float(y.min()), 10.0 * float(y.max()), 10.0]
    best = None
    for a in (0.05, 0.2, 0.5, 1.0, 2.0):
        p0 = np.clip([0.5 * y.min(), 0.5 * y.min() + 1e-9, a], np.array(lo) + 1e-12, np.array(hi) - 1e-12)
        res = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=500)
        if best is None or res.cost < best.cost:
            best = res
    p = best.x
    tt = np.log(curve.x_test / np.exp(np.mean(np.log(x))))
    values = p[0] + p[1] * np.exp(-p[2] * tt)
    sd = float(np.sqrt(np.mean(best.fun**2) * x.size / max(x.size - 3, 1)))
    z = norm.ppf(0.5 + level / 2.0)
    return Prediction(values, values * np.exp(-z * sd), values * np.exp(z * sd), time.process_time() - start)


def peer_predictor(curves: Sequence[Curve]) -> Predictor:
    """Extrapolation from peers (:mod:`scalelab.analysis.peers`): a curve's held-out rows predicted from its
    last value and the ratios the other curves of its domain (the first key column: a study, for
    :func:`curves_csv`) show between the same two x, train and held-out rows alike: the case of a network
    judged while others of its study, on the same schedule, have finished. Refused (last value, no
    interval) where fewer than :data:`~scalelab.analysis.peers.MIN_PEERS` peers have both x."""
    domains: dict[Any, list[Curve]] = {}
    for c in curves:
        domains.setdefault(c.key[0], []).append(c)

    def predict(curve: Curve, level: float) -> Prediction:
        start = time.process_time()
        anchor, now = float(curve.x_train.max()), last_value(curve)
        peers = [c for c in domains.get(curve.key[0], []) if c is not curve]
        values, lower, upper = [], [], []
        for x in curve.x_test:
            pairs = [(a, b) for a, b in ((_value_at(p, anchor), _value_at(p, x)) for p in peers)
                     if a is not None and b is not None]
            try:
                pred = predict_from_peers(now, [a for a, _ in pairs], [b for _, b in pairs], level)
            except FitError as exc:
                flat, nan = np.full(curve.x_test.size, now), np.full(curve.x_test.size, np.nan)
                return Prediction(flat, nan, nan, time.process_time() - start, f"refused: {exc}")
            values.append(pred.value)
            lower.append(pred.lower)
            upper.append(pred.upper)
        return Prediction(np.array(values), np.array(lower), np.array(upper), time.process_time() - start)

    return predict


def _value_at(curve: Curve, x: float) -> float | None:
    """The curve's mean y at ``x`` (train and held-out rows), None where it has no row there."""
    xs, ys = np.concatenate([curve.x_train, curve.x_test]), np.concatenate([curve.y_train, curve.y_test])
    at = np.isclose(xs, x, rtol=1e-9, atol=0.0)
    return float(ys[at].mean()) if at.any() else None


PREDICTORS: dict[str, Predictor] = {
    "scalelab": predict_scalelab,
    "last value": predict_last_value,
    "E + A*x^-a (log)": predict_power_law,
}


def score(curves: Sequence[Curve], predictors: dict[str, Predictor] | None = None,
          level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-curve rows (curve, method, log_rmse, coverage, seconds, note) and one summary row per method:
    mean_log_rmse, median_log_rmse, wins (curves on which the method has the lowest log-RMSE; ties count
    for each), coverage (mean over curves of the share of held-out rows inside the interval at ``level``),
    coverage_rows (pooled over rows), mean_seconds, max_seconds, refused (curves it would not fit), and at
    each curve's last held-out point (its final value, what a study wants predicted): mean_final_error (the
    mean absolute error, in the curve's units: for scalelab's own curves, validation error, so x 100 is
    points of accuracy) and final_coverage (the share of curves whose interval holds it)."""
    predictors = PREDICTORS if predictors is None else predictors
    rows = []
    for curve in curves:
        for method, predict in predictors.items():
            pred = predict(curve, level)
            err = np.log(np.maximum(pred.values, 1e-300)) - np.log(curve.y_test)
            inside = (pred.lower <= curve.y_test) & (curve.y_test <= pred.upper)
            has_interval = bool(np.all(np.isfinite(pred.lower)) and np.all(np.isfinite(pred.upper)))
            last = int(np.argmax(curve.x_test))
            rows.append(dict(curve=curve.name, method=method, n_fit=curve.x_train.size, n_test=curve.y_test.size,
                             log_rmse=float(np.sqrt(np.mean(err**2))),
                             coverage=float(inside.mean()) if has_interval else np.nan,
                             covered=int(inside.sum()) if has_interval else 0,
                             scored=curve.y_test.size if has_interval else 0,
                             final_error=float(abs(pred.values[last] - curve.y_test[last])),
                             final_covered=float(inside[last]) if has_interval else np.nan,
                             seconds=pred.seconds, note=pred.note))
    per_curve = pd.DataFrame(rows)
    best = per_curve.groupby("curve", sort=False)["log_rmse"].transform("min")
    per_curve["win"] = per_curve["log_rmse"] <= best
    summary = []
    for method, part in per_curve.groupby("method", sort=False):
        summary.append(dict(
            method=method, curves=len(part), mean_log_rmse=part["log_rmse"].mean(),
            median_log_rmse=part["log_rmse"].median(), wins=int(part["win"].sum()),
            coverage=part["coverage"].mean(),
            coverage_rows=part["covered"].sum() / part["scored"].sum() if part["scored"].sum() else np.nan,
            mean_final_error=part["final_error"].mean(), final_coverage=part["final_covered"].mean(),
            mean_seconds=part["seconds"].mean(), max_seconds=part["seconds"].max(),
            refused=int(part["note"].str.startswith("refused").sum())))
    return per_curve, pd.DataFrame(summary)


def format_summary(summary: pd.DataFrame, level: float) -> str:
    """The summary as an aligned text table."""
    head = (f"{'method':<18} {'curves':>6} {'mean log-RMSE':>13} {'median':>8} {'wins':>5} "
            f"{f'{100 * level:g}% cover':>10} {'(rows)':>7} {'final |err|':>11} {'cover':>6} "
            f"{'s/fit':>6} {'max s':>6} {'refused':>7}")
    lines = [head]
    for r in summary.itertuples():
        cover = "-" if np.isnan(r.coverage) else f"{100 * r.coverage:.1f}%"
        rows = "-" if np.isnan(r.coverage_rows) else f"{100 * r.coverage_rows:.1f}%"
        final = "-" if np.isnan(r.final_coverage) else f"{100 * r.final_coverage:.0f}%"
        lines.append(f"{r.method:<18} {r.curves:>6} {r.mean_log_rmse:>13.4f} {r.median_log_rmse:>8.4f} "
                     f"{r.wins:>5} {cover:>10} {rows:>7} {r.mean_final_error:>11.4f} {final:>6} "
                     f"{r.mean_seconds:>6.2f} {r.max_seconds:>6.2f} {r.refused:>7}")
    return "\n".join(lines)


def curves_csv(storage: str, *, x: str = "images_seen", fit_share: float = 0.6) -> pd.DataFrame:
    """Per-evaluation validation curves of every complete trial in ``storage``, in the benchmark format.

    Columns: Domain (the study), Task (the trial number), Model, ``Seen Examples`` (``x`` of the curve
    point: images_seen or epoch), Loss (validation error, 1 - val_acc) and Training (1 for the first
    ``fit_share`` of each curve's points, at least one; 0 for the rest, at least one). Curves with fewer than
    two points are left out, as they have nothing to predict.
    """
    from scalelab.analysis.results import results_table

    if x not in ("images_seen", "epoch"):
        raise BenchError(f"x must be images_seen or epoch; got {x!r}")
    if not 0.0 < fit_share < 1.0:
        raise BenchError(f"the share of each curve to fit must be between 0 and 1; got {fit_share}")
    rows = []
    for trial in results_table(storage).itertuples():
        points = [p for p in (trial.curve or []) if p.get("val_acc") is not None and p.get(x)]
        points.sort(key=lambda p: p[x])
        if len(points) < 2:
            continue
        n_fit = min(max(1, math.ceil(fit_share * len(points))), len(points) - 1)
        for i, p in enumerate(points):
            rows.append({"Domain": trial.study, "Task": trial.trial, "Model": trial.model,
                         X_COLUMN: float(p[x]), Y_COLUMN: max(1.0 - float(p["val_acc"]), 1e-6),
                         TRAIN_COLUMN: int(i < n_fit)})
    return pd.DataFrame(rows, columns=[*KEY_COLUMNS, X_COLUMN, Y_COLUMN, TRAIN_COLUMN])
