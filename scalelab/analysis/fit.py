"""Saturation-curve fits of error (or accuracy, or loss) against compute, with bootstrap uncertainty.

Fits run on ``t = ln(C / c_ref)`` with ``c_ref`` the geometric midpoint of the compute range, from many
deterministic starting points (a grid plus seeded random shapes, each with its linear parameters solved in
closed form), with a soft-L1 loss whose scale comes from a robust estimate of the residual noise.

Uncertainty comes from a residual bootstrap: the compute values stay fixed and centred, leverage-inflated
residuals are resampled onto the fitted curve. With the few points of a scaling study, resampling points
instead would often drop the largest-compute points that drive extrapolation, or leave fewer distinct compute
values than parameters. Each replicate is a single local fit warm-started from the full fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from scalelab.analysis.fit_forms import FORMS, Form
from scalelab.analysis.fit_solve import (
    Points,
    bootstrap,
    bootstrap_residuals,
    fit_point,
)
from scalelab.errors import ScalelabError

Metric = Literal["error", "accuracy", "loss"]
_METRICS = ("error", "accuracy", "loss")
_SATURATION_DECADES = 100


class FitError(ScalelabError, ValueError):
    """Points, form or setting for a curve fit are unusable."""


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted curve and its bootstrap replicates.

    ``params`` describe the error-like curve (``1 - accuracy`` when ``metric='accuracy'``) in the form's
    formula (``FORMS[form].formula``): ``E`` is the irreducible error, ``A`` the reducible error at
    ``c_ref`` (power laws) or the whole drop (sigmoid forms), compute scales are in compute units.
    ``param_ci`` holds bootstrap percentile intervals at ``level`` (NaN without bootstrap); ``rmse`` is the
    in-sample root-mean-square residual and ``noise`` a robust (MAD) estimate of the noise per point.
    """

    form: str
    params: dict[str, float]
    param_ci: dict[str, tuple[float, float]]
    n_points: int
    rmse: float
    noise: float
    metric: str
    c_ref: float
    c_range: tuple[float, float]
    level: float
    _theta: np.ndarray = field(repr=False)
    _boot: np.ndarray = field(repr=False)
    _resid: np.ndarray = field(repr=False)
    _seed: int = field(repr=False)

    @property
    def n_bootstrap(self) -> int:
        return int(self._boot.shape[0])

    @property
    def asymptote(self) -> float:
        """Predicted metric as compute goes to infinity."""
        floor = self.params.get("E", 0.0)
        return 1.0 - floor if self.metric == "accuracy" else floor

    def predict(self, compute: ArrayLike) -> np.ndarray:
        """Predicted metric at ``compute``, same shape as the input."""
        t = _log_compute(compute, self.c_ref)
        return _to_metric(FORMS[self.form].evaluate(self._theta, t.ravel()), self.metric).reshape(t.shape)

    def replicates(self, compute: ArrayLike, *, predictive: bool = False) -> np.ndarray:
        """Bootstrap predictions, ``(n_bootstrap, n)``; ``predictive`` adds a resampled residual to each."""
        if self.n_bootstrap == 0:
            raise FitError("this fit has no bootstrap replicates; refit with n_bootstrap > 0")
        sims = FORMS[self.form].evaluate(self._boot, _log_compute(compute, self.c_ref).ravel())
        if predictive:
            sims = sims + np.random.default_rng(self._seed).choice(self._resid, size=sims.shape)
        return _to_metric(sims, self.metric)

    def band(self, compute: ArrayLike, level: float = 0.95, *,
             predictive: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band ``(lower, upper)`` of the curve, or of new observations if ``predictive``."""
        _check_level(level)
        sims = self.replicates(compute, predictive=predictive)
        tail = 50.0 * (1.0 - level)
        lower, upper = np.percentile(sims, [tail, 100.0 - tail], axis=0)
        return lower.reshape(np.shape(compute)), upper.reshape(np.shape(compute))

    def saturation(self, threshold: float = 0.01) -> float:
        """Compute from which on doubling it gains less than ``threshold`` (in metric units).

        Returns the smallest fitted compute if that already holds there, ``inf`` if it never holds within
        100 decades beyond it.
        """
        _check_threshold(threshold)
        return self._saturation(self._theta, threshold)

    def saturation_ci(self, threshold: float = 0.01, level: float | None = None) -> tuple[float, float]:
        """Bootstrap percentile interval of :meth:`saturation` at ``level`` (default: the fit's level).

        Either end may be ``inf`` (replicates that never level off); the ends are observed replicate
        values, never interpolated, so an infinite tail cannot turn into NaN.
        """
        _check_threshold(threshold)
        level = self.level if level is None else level
        _check_level(level)
        if self.n_bootstrap == 0:
            raise FitError("this fit has no bootstrap replicates; refit with n_bootstrap > 0")
        points = np.array([self._saturation(theta, threshold) for theta in self._boot])
        tail = 50.0 * (1.0 - level)
        return (float(np.percentile(points, tail, method="lower")),
                float(np.percentile(points, 100.0 - tail, method="higher")))

    def _saturation(self, theta: np.ndarray, threshold: float) -> float:
        form, step = FORMS[self.form], np.log(2.0)

        def excess(t: np.ndarray) -> np.ndarray:
            pair = form.evaluate(theta, np.concatenate([np.atleast_1d(t), np.atleast_1d(t) + step]))
            return pair[: pair.size // 2] - pair[pair.size // 2 :] - threshold

        t0 = np.log(self.c_range[0] / self.c_ref)
        grid = np.linspace(t0, t0 + _SATURATION_DECADES * np.log(10.0), 4001)
        above = np.flatnonzero(excess(grid) >= 0)
        if above.size == 0:
            return self.c_range[0]
        if above[-1] == grid.size - 1:
            return float("inf")
        i = above[-1]
        return float(self.c_ref * np.exp(brentq(lambda s: excess(s)[0], grid[i], grid[i + 1])))


def _check_threshold(threshold: float) -> None:
    if not np.isfinite(threshold) or threshold <= 0:
        raise FitError(f"saturation threshold must be a positive number; got {threshold}")


def fit_curve(
    compute: ArrayLike,
    values: ArrayLike,
    form: str = "pow3",
    *,
    metric: Metric = "error",
    n_starts: int = 8,
    n_bootstrap: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Fit:
    """Fit one named form of ``FORMS`` to ``values`` (error rate, accuracy or loss) against ``compute``."""
    spec = get_form(form)
    _check_settings(n_starts, n_bootstrap, level)
    pts = _prepare(compute, values, metric, spec)
    rng = np.random.default_rng(seed)
    best = fit_point(spec, pts, n_starts, rng)
    raw = pts.y - spec.evaluate(best.theta, pts.t)
    resid = bootstrap_residuals(raw, spec.n_params)
    boot = bootstrap(spec, pts, best, resid, n_bootstrap, rng)
    return Fit(
        form=form,
        params=spec.public(best.theta, pts.c_ref),
        param_ci=_param_ci(spec, boot, pts.c_ref, level),
        n_points=int(pts.t.size),
        rmse=float(np.sqrt(np.mean(raw**2))),
        noise=best.noise,
        metric=metric,
        c_ref=pts.c_ref,
        c_range=pts.c_range,
        level=level,
        _theta=best.theta,
        _boot=boot,
        _resid=resid,
        _seed=seed,
    )


def get_form(name: str) -> Form:
    """The registered form called ``name``."""
    if name not in FORMS:
        raise FitError(f"unknown curve form {name!r}; choose one of: {', '.join(FORMS)}")
    return FORMS[name]


def validate_points(compute: ArrayLike, values: ArrayLike, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked float copies of the points, or a :class:`FitError` saying what is wrong."""
    if metric not in _METRICS:
        raise FitError(f"unknown metric {metric!r}; choose one of: {', '.join(_METRICS)}")
    c, v = _as_vector(compute, "compute"), _as_vector(values, metric)
    if c.shape != v.shape:
        raise FitError(f"compute has {c.size} values but {metric} has {v.size}; pass one value per point")
    if np.any(c <= 0):
        raise FitError("compute must be positive (FLOPs or parameters); drop points with zero or negative compute")
    if metric != "loss" and (v.min() < 0 or v.max() > 1):
        raise FitError(f"{metric} values must lie in [0, 1]; divide percentages by 100, or use metric='loss'")
    if v.min() < 0:
        raise FitError("loss values must be non-negative; shift the loss so that 0 is the best possible value")
    if c.max() / c.min() - 1.0 < 1e-9:
        raise FitError("all compute values are equal; a curve needs points at two or more different compute values")
    return c, v


def _as_vector(values: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise FitError(f"{name} must be a sequence of numbers; got {type(values).__name__}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise FitError(f"{name} must be a non-empty 1-D sequence; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise FitError(f"{name} contains NaN or infinite values; drop or repair those points")
    return arr


def _prepare(compute: ArrayLike, values: ArrayLike, metric: str, spec: Form) -> Points:
    c, v = validate_points(compute, values, metric)
    distinct = np.unique(c).size
    if distinct <= spec.n_params:
        raise FitError(
            f"form {spec.name!r} has {spec.n_params} parameters and needs at least {spec.n_params + 1} different "
            f"compute values; got {distinct}. Add points or use a form with fewer parameters (e.g. 'pow2')"
        )
    c_range = (float(c.min()), float(c.max()))
    y = 1.0 - v if metric == "accuracy" else v
    return Points(np.log(c / np.sqrt(c_range[0] * c_range[1])), y, c_range, metric)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise FitError(f"confidence level must be between 0 and 1 (e.g. 0.95); got {level}")


def _check_settings(n_starts: int, n_bootstrap: int, level: float) -> None:
    if int(n_starts) != n_starts or n_starts < 1:
        raise FitError(f"n_starts must be a positive integer; got {n_starts}")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise FitError(f"n_bootstrap must be a non-negative integer (0 skips the bootstrap); got {n_bootstrap}")
    _check_level(level)


def _log_compute(compute: ArrayLike, c_ref: float) -> np.ndarray:
    try:
        c = np.asarray(compute, dtype=float)
    except (TypeError, ValueError) as exc:
        raise FitError(f"compute to predict at must be numbers; got {type(compute).__name__}") from exc
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise FitError("compute to predict at must be positive and finite")
    return np.log(c / c_ref)


def _to_metric(y: np.ndarray, metric: str) -> np.ndarray:
    """Internal error-like values to the user's metric, kept inside its valid range."""
    if metric == "loss":
        return np.maximum(y, 0.0)
    y = np.clip(y, 0.0, 1.0)
    return 1.0 - y if metric == "accuracy" else y


def _param_ci(form: Form, boot: np.ndarray, c_ref: float, level: float) -> dict[str, tuple[float, float]]:
    if boot.shape[0] == 0:
        return {name: (float("nan"), float("nan")) for name in form.param_names}
    table = np.array([list(form.public(row, c_ref).values()) for row in boot])
    tail = 50.0 * (1.0 - level)
    lower, upper = np.percentile(table, [tail, 100.0 - tail], axis=0)
    return {name: (float(a), float(b)) for name, a, b in zip(form.param_names, lower, upper)}
