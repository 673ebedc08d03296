"""Saturation-curve fits of error (or accuracy, or loss) against compute, with calibrated uncertainty.

Fits run on ``t = ln(C / c_ref)`` with ``c_ref`` the geometric midpoint of the compute range. The residuals
are ``log(fit) - log(value)`` of the error-like curve, the space extrapolation error is judged in, weighted
so that each stretch of log-compute counts by its length and the large-compute end counts most
(:func:`scalelab.analysis.fit_solve.point_weights`); many deterministic starting points (a grid plus seeded
random shapes, linear parameters solved in closed form), then a soft-L1 loss scaled to the residual noise.

Uncertainty: parameter replicates come from a residual bootstrap in log space (all replicates refitted at
once, see :func:`scalelab.analysis.fit_solve.bootstrap`); a prediction for a new observation adds the
log-residual noise. Both are then *calibrated on held-out points*: the curve is refitted without its
largest-compute points over the same log-compute distance as the extrapolation being asked for
(``horizon``), and the spread is scaled up by the
root-mean-square of the standardised errors on the held-out points when they missed by more than the fit's
own uncertainty said (never scaled down). Bands and intervals are percentiles of the calibrated replicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.stats import kendalltau

from scalelab.analysis.fit_forms import FORMS, Form
from scalelab.analysis.fit_solve import Points, PointFit, bootstrap, fit_point, log_residuals
from scalelab.errors import ScalelabError

Metric = Literal["error", "accuracy", "loss"]
Trend = Literal["decreasing", "flat"]
_METRICS = ("error", "accuracy", "loss")
_SATURATION_DECADES = 100
_DEFAULT_HOLDOUT_SHARE = 0.25  # of the log-compute range, when no horizon is given
_MAX_HOLDOUT_SHARE = 0.5       # a held-out stretch never exceeds half the data's log-compute range
_N_CALIBRATION_DRAWS = 60
_TREND_P = 0.05                # one-sided Mann-Kendall level for 'the values fall with compute'


class FitError(ScalelabError, ValueError):
    """Points, form or setting for a curve fit are unusable."""


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted curve and its calibrated parameter replicates.

    ``params`` describe the error-like curve (``1 - accuracy`` when ``metric='accuracy'``) in the form's
    formula (``FORMS[form].formula``): ``E`` is the irreducible error, ``A`` the reducible error at
    ``c_ref`` (power laws) or the whole drop (sigmoid forms), compute scales are in compute units.
    ``param_ci`` holds percentile intervals of the replicates at ``level`` (NaN without replicates); ``rmse``
    is the in-sample root-mean-square residual and ``noise`` a robust (MAD) estimate of the noise per point,
    both in metric units; ``log_noise`` is the robust noise of the log residuals the fit minimised.
    ``calibration`` is the factor (>= 1) the held-out points scaled the spread by, ``holdout_decades`` the
    log10-compute distance held out for it (0 when too few points allowed none). ``trend`` is ``"flat"``
    when the fitted drop over the data is within noise (or the form is ``flat``); ``note`` says why.
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
    log_noise: float = 0.0
    calibration: float = 1.0
    holdout_decades: float = 0.0
    trend: Trend = "decreasing"
    note: str = ""
    _floor: float = field(default=0.0, repr=False)

    @property
    def n_bootstrap(self) -> int:
        """Number of parameter replicates (the name is kept from the residual bootstrap this replaced)."""
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
        """Replicate predictions, ``(n_bootstrap, n)``; ``predictive`` adds calibrated observation noise."""
        if self.n_bootstrap == 0:
            raise FitError("this fit has no replicates; refit with n_bootstrap > 0")
        t = _log_compute(compute, self.c_ref).ravel()
        sims = np.log(np.maximum(FORMS[self.form].evaluate(self._boot, t), self._floor))
        if predictive:
            rng = np.random.default_rng(self._seed)
            sims = sims + self.calibration * self.log_noise * rng.standard_normal(sims.shape)
        return _to_metric(np.exp(sims), self.metric)

    def band(self, compute: ArrayLike, level: float = 0.95, *,
             predictive: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated percentile band ``(lower, upper)`` of new observations at ``compute`` (the default),
        or of the curve itself with ``predictive=False``."""
        _check_level(level)
        sims = self.replicates(compute, predictive=predictive)
        tail = 50.0 * (1.0 - level)
        lower, upper = np.percentile(sims, [tail, 100.0 - tail], axis=0)
        return lower.reshape(np.shape(compute)), upper.reshape(np.shape(compute))

    def saturation(self, threshold: float = 0.01) -> float:
        """Compute from which on doubling it gains less than ``threshold`` (in metric units).

        Returns the smallest fitted compute if that already holds there (so always for a flat fit), ``inf``
        if it never holds within 100 decades beyond it.
        """
        _check_threshold(threshold)
        return self._saturation(self._theta, threshold)

    def saturation_ci(self, threshold: float = 0.01, level: float | None = None) -> tuple[float, float]:
        """Percentile interval of :meth:`saturation` over the calibrated replicates at ``level`` (default:
        the fit's level).

        Either end may be ``inf`` (replicates that never level off); the ends are observed replicate
        values, never interpolated, so an infinite tail cannot turn into NaN.
        """
        _check_threshold(threshold)
        level = self.level if level is None else level
        _check_level(level)
        if self.n_bootstrap == 0:
            raise FitError("this fit has no replicates; refit with n_bootstrap > 0")
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
    horizon: float | None = None,
    folds: int = 2,
) -> Fit:
    """Fit one named form of ``FORMS`` to ``values`` (error rate, accuracy or loss) against ``compute``.

    ``horizon`` is the largest compute the fit will be asked to predict at: the held-out stretch that
    calibrates the intervals spans the same log-compute distance beyond the data (by default a quarter of
    the data's log-compute range; at most half of it). ``folds`` held-out stretches are used, each ending
    half a stretch before the previous one; ``n_bootstrap`` is the number of parameter replicates kept.
    """
    spec = get_form(form)
    _check_settings(n_starts, n_bootstrap, level)
    _check_folds(folds)
    pts, distance = with_horizon(_prepare(compute, values, metric, spec), horizon)
    rng = np.random.default_rng(seed)
    best = fit_point(spec, pts, n_starts, rng)
    scores = [score_fold(spec, pts, fold, n_starts, rng, best.theta)
              for fold in holdout_folds(pts, distance, folds, spec.n_params)]
    return build_fit(spec, pts, best, scores, metric=metric, level=level, n_bootstrap=n_bootstrap, seed=seed)


@dataclass(frozen=True)
class Fold:
    """One held-out stretch: fit on ``train``, predict ``test`` (masks over the points)."""

    train: np.ndarray
    test: np.ndarray
    distance: float  # ln-compute from the last training point's cut to the end of the stretch
    index: int = 0   # 0: the stretch that ends at the largest compute


@dataclass(frozen=True)
class FoldScore:
    """How a form fitted on one fold's training points did on its held-out points (log space)."""

    errors: np.ndarray  # log(prediction) - log(truth)
    sd: np.ndarray      # the fit's own (uncalibrated) predictive standard deviation there
    distance: float
    log_truth: np.ndarray
    index: int = 0

    @property
    def mae(self) -> float:
        """Mean absolute error in the error-like curve's own units."""
        return float(np.mean(np.abs(np.exp(self.log_truth) * np.expm1(self.errors))))

    @property
    def log_rmse(self) -> float:
        return float(np.sqrt(np.mean(self.errors**2)))


def with_horizon(pts: Points, horizon: float | None) -> tuple[Points, float]:
    """The points for an extrapolation to ``horizon``, and the ln-compute distance to hold out.

    The weights stay the linear ramp of :func:`~scalelab.analysis.fit_solve.point_weights`: weights that
    decay from the end on the scale of the held-out distance (1, 2 or 4 times it) extrapolated worse on
    the language benchmark, as the curvature is then fitted on too few points.
    """
    return pts, holdout_distance(pts, horizon)


def holdout_distance(pts: Points, horizon: float | None) -> float:
    """ln-compute distance to hold out: the distance from the data to ``horizon``, capped at half the
    data's range; a quarter of the range when ``horizon`` is None or inside the data."""
    span = float(pts.t.max() - pts.t.min())
    if horizon is not None:
        if not np.isfinite(horizon) or horizon <= 0:
            raise FitError(f"horizon must be a positive compute value; got {horizon}")
        ahead = float(np.log(horizon / pts.c_range[1]))
        if ahead > 0:
            return min(ahead, _MAX_HOLDOUT_SHARE * span)
    return _DEFAULT_HOLDOUT_SHARE * span


def holdout_folds(pts: Points, distance: float, folds: int, n_params: int) -> list[Fold]:
    """Forward folds: fold ``j`` (from 0) ends ``j * distance / 2`` before the largest compute, holds out the
    points within ``distance`` before that end and trains on everything before them. Folds whose training
    part has too few different compute values for ``n_params`` parameters (or no held-out point) are left out.
    """
    t, eps = pts.t, 1e-9
    out = []
    for j in range(folds):
        end = t.max() - j * distance / 2
        cut = end - distance
        train, test = t <= cut + eps, (t > cut + eps) & (t <= end + eps)
        if np.unique(t[train]).size > n_params and test.any():
            out.append(Fold(train, test, distance, j))
    return out


def score_fold(spec: Form, pts: Points, fold: Fold, n_starts: int, rng: np.random.Generator,
               warm: np.ndarray | None = None) -> FoldScore:
    """Fit ``spec`` on the fold's training points and score its log predictions on the held-out ones.

    The fit starts from ``warm`` (the full fit) and half the usual number of fresh starting points."""
    sub = pts.subset(fold.train)
    best = fit_point(spec, sub, max(1, n_starts // 2), rng, warm)
    t = pts.t[fold.test]
    floor = sub.floor
    pred = np.log(np.maximum(spec.evaluate(best.theta, t), floor))
    sims = np.log(np.maximum(spec.evaluate(bootstrap(spec, sub, best, _N_CALIBRATION_DRAWS, 1.0, rng), t), floor))
    sd = np.sqrt(sims.var(axis=0) + best.noise**2 + pts.within)
    truth = np.log(np.maximum(pts.y[fold.test], floor))
    return FoldScore(pred - truth, sd, fold.distance, truth, fold.index)


def calibration_factor(scores: list[FoldScore]) -> float:
    """Root-mean-square standardised held-out error, mean over folds, never below 1 (1 without folds)."""
    if not scores:
        return 1.0
    ms = [np.mean((s.errors / np.maximum(s.sd, 1e-9)) ** 2) for s in scores]
    return float(max(1.0, np.sqrt(np.mean(ms))))


def build_fit(spec: Form, pts: Points, best: PointFit, scores: list[FoldScore], *, metric: str, level: float,
              n_bootstrap: int, seed: int) -> Fit:
    """The :class:`Fit` of ``best``: calibrated replicates, linear-space summaries and the trend verdict."""
    scale = calibration_factor(scores)
    rng = np.random.default_rng(seed + 1)
    boot = bootstrap(spec, pts, best, n_bootstrap, scale, rng)
    trend, note = _trend(spec, pts, best)
    if scores and scale > 1.0:
        note = (note + "; " if note else "") + (f"intervals widened x{scale:.2g}: held-out points "
                                                 f"{scores[0].distance / np.log(10):.2g} decades ahead missed "
                                                 f"by more than the fit's own spread")
    fitted = spec.evaluate(best.theta, pts.t)
    lin = pts.y - fitted
    mad = 1.4826 * np.median(np.abs(lin - np.median(lin)))
    return Fit(
        form=spec.name,
        params=spec.public(best.theta, pts.c_ref),
        param_ci=_param_ci(spec, boot, pts.c_ref, level),
        n_points=pts.count or int(pts.t.size),
        rmse=float(np.sqrt(np.mean(lin**2))),
        noise=float(mad * np.sqrt(lin.size / max(lin.size - spec.n_params, 1))),
        metric=metric,
        c_ref=pts.c_ref,
        c_range=pts.c_range,
        level=level,
        _theta=best.theta,
        _boot=boot,
        _resid=log_residuals(spec, best.theta, pts),
        _seed=seed,
        log_noise=float(np.sqrt(best.noise**2 + pts.within)),
        calibration=scale,
        holdout_decades=float(scores[0].distance / np.log(10)) if scores else 0.0,
        trend=trend,
        note=note,
        _floor=pts.floor,
    )


def _trend(spec: Form, pts: Points, best: PointFit) -> tuple[Trend, str]:
    """``decreasing`` when the points fall with compute by a one-sided Mann-Kendall test at 5% and the fitted
    curve drops over the data; ``flat`` otherwise.

    The test runs on the mean value per distinct compute (repeated evaluations at one compute are not
    independent evidence of a trend). It makes no assumption about the form or the noise, so a curve that
    is flat, noisy or rising is not read as a trend because a fitted form happens to slope.
    """
    if not spec.has_amplitude:
        return "flat", "flat: no decreasing trend to extrapolate; predicted to stay at its level"
    values, inverse = np.unique(pts.t, return_inverse=True)
    means = np.bincount(inverse, weights=pts.y) / np.bincount(inverse)
    p_value = kendalltau(values, means, alternative="less").pvalue if values.size >= 3 else 1.0
    ends = np.array([pts.t.min(), pts.t.max()])
    curve = spec.evaluate(best.theta, ends)
    drop = float(np.log(max(curve[0], pts.floor)) - np.log(max(curve[1], pts.floor)))
    if np.isfinite(p_value) and p_value < _TREND_P and drop > 1e-6:
        return "decreasing", ""
    return "flat", (f"no decreasing trend beyond noise: the values fall with compute with one-sided p = "
                    f"{p_value:.2g} (Mann-Kendall, {values.size} compute values); not extrapolated as a trend")


def _check_folds(folds: int) -> None:
    if int(folds) != folds or folds < 1:
        raise FitError(f"folds must be a positive integer; got {folds}")


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
    # Repeated evaluations at one compute are fitted as their mean; their scatter joins the noise.
    values, inverse, counts = np.unique(c, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    floor = 1e-3 * max(float(y.max()), 1e-12)
    log_y = np.log(np.maximum(y, floor))
    log_means = np.bincount(inverse, weights=log_y) / counts
    within = float(np.sum((log_y - log_means[inverse]) ** 2) / (c.size - values.size)) if c.size > values.size else 0.0
    return Points(np.log(values / np.sqrt(c_range[0] * c_range[1])), means, c_range, metric, None, int(c.size), within)


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
