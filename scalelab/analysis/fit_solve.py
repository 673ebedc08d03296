"""Numerical core of :func:`scalelab.analysis.fit.fit_curve`: weights, bounds, multi-start fit in log space
and the batched residual bootstrap.

Points arrive validated, as error-like ``y`` (lower is better) against ``t = ln(C / c_ref)``. Residuals are
``log f(t) - log y``, the space extrapolation error is judged in (a relative error, so a curve at 0.9 and
one at 0.05 are fitted alike), each weighted by :func:`point_weights`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeResult, least_squares

from scalelab.analysis.fit_forms import Form

_N_RANDOM_STARTS = 32
_SCOUT_NFEV = 30  # evaluations per starting point; only the best scout is refined to convergence
_LOG_FLOOR = 1e-3  # values below this share of the largest are fitted as if they were that share

Bounds = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Points:
    """Validated points in fitting coordinates; ``c_ref`` is the geometric midpoint of ``c_range``."""

    t: np.ndarray
    y: np.ndarray
    c_range: tuple[float, float]
    metric: str
    length: float | None = None  # ln-compute length scale of the end emphasis; None: a linear ramp
    count: int = 0               # points before repeated compute values were averaged
    within: float = 0.0          # pooled variance of log values among repeats at one compute

    @property
    def c_ref(self) -> float:
        return float(np.sqrt(self.c_range[0] * self.c_range[1]))

    @property
    def half(self) -> float:
        """Half the log-compute range: ``t`` runs over ``[-half, half]``."""
        return float(0.5 * np.log(self.c_range[1] / self.c_range[0]))

    @property
    def weights(self) -> np.ndarray:
        return point_weights(self.t, self.length)

    @property
    def floor(self) -> float:
        return _LOG_FLOOR * max(float(self.y.max()), 1e-12)

    @property
    def log_y(self) -> np.ndarray:
        return np.log(np.maximum(self.y, self.floor))

    def subset(self, mask: np.ndarray) -> Points:
        """The points in ``mask``, with weights recomputed on their own span (same ``t`` origin)."""
        return Points(self.t[mask], self.y[mask], self.c_range, self.metric, self.length, int(mask.sum()),
                      self.within)


def point_weights(t: np.ndarray, length: float | None = None) -> np.ndarray:
    """Weights, mean 1: each distinct ``t`` gets the share of log-compute it stands for, times a ramp.

    The share is half the gap to each neighbour (a dense stretch of points, or one compute value evaluated
    several times, counts no more than a sparse stretch of the same length), split among the points at that
    value. The ramp rises linearly from 1/2 at the smallest compute to 3/2 at the largest: the large-compute
    end is what an extrapolation continues from, but the small end still pins the curvature.
    """
    values, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    if values.size == 1:
        return np.ones_like(t)
    gaps = np.diff(values)
    share = 0.5 * (np.concatenate([gaps[:1], gaps]) + np.concatenate([gaps, gaps[-1:]]))
    span = values[-1] - values[0]
    if length is None:
        ramp = 0.5 + (values - values[0]) / span
    else:
        ramp = np.exp((values - values[-1]) / length)
    w = (share * ramp / counts)[inverse]
    return w * (w.size / w.sum())


@dataclass(frozen=True)
class PointFit:
    """Best parameters, the soft-L1 scale used, the robust log-residual noise and the box."""

    theta: np.ndarray
    f_scale: float
    noise: float
    box: Bounds


def bounds(form: Form, y: np.ndarray, half: float, metric: str) -> Bounds:
    """Box bounds: ``0 <= E <= min(y)``, ``0 <= A <= 1`` for rates (10 x max for losses), shape bounds."""
    shape_lo, shape_hi = form.shape_bounds(half)
    amp_hi = 1.0 if metric != "loss" else 10.0 * max(float(y.max()), 1e-12)
    lo, hi = [], []
    if form.has_floor:
        lo, hi = [0.0], [max(float(y.min()), 1e-12) if form.has_amplitude else max(float(y.max()), 1e-12)]
    if form.has_amplitude:
        lo, hi = lo + [0.0], hi + [amp_hi]
    return np.concatenate([lo, shape_lo]), np.concatenate([hi, shape_hi])


def log_residuals(form: Form, theta: np.ndarray, pts: Points) -> np.ndarray:
    """``log f - log y`` at the points, both held above the points' floor."""
    return np.log(np.maximum(form.evaluate(theta, pts.t), pts.floor)) - pts.log_y


def fit_point(form: Form, pts: Points, n_starts: int, rng: np.random.Generator,
              warm: np.ndarray | None = None) -> PointFit:
    """Multi-start weighted fit of log residuals, then a refit with the loss scale set from their noise.

    The first pass uses a soft-L1 scale of a tenth of the log spread, so gross outliers already count
    linearly; the refit scales it to 2 robust standard deviations of the residuals.
    """
    box = bounds(form, pts.y, pts.half, pts.metric)
    w = pts.weights
    spread = float(np.ptp(pts.log_y)) + 1e-9
    starts = _starts(form, pts, box, n_starts, rng)
    if warm is not None:
        starts = np.vstack([warm[None, :], starts])
    scouts = [_local(form, pts, w, x0, box, 0.1 * spread, _SCOUT_NFEV) for x0 in starts]
    first = _local(form, pts, w, min(scouts, key=lambda res: res.cost).x, box, 0.1 * spread)
    noise = robust_noise(log_residuals(form, first.x, pts), w, form.n_params)
    f_scale = max(2.0 * noise, 1e-4 * spread)
    theta = _local(form, pts, w, first.x, box, f_scale).x
    return PointFit(theta, f_scale, rms_noise(log_residuals(form, theta, pts), w, form.n_params), box)


def rms_noise(resid: np.ndarray, w: np.ndarray, n_params: int) -> float:
    """Weighted root-mean-square residual, inflated for the degrees of freedom the fit used.

    The intervals use this rather than the robust estimate: on step-like curves (an evaluation repeated
    until the next checkpoint) most residuals are equal and a median-based spread would be near zero.
    """
    n_eff = w.sum() ** 2 / np.sum(w**2)
    return float(np.sqrt(np.sum(w * resid**2) / w.sum() * n_eff / max(n_eff - n_params, 1.0)))


def robust_noise(resid: np.ndarray, w: np.ndarray, n_params: int) -> float:
    """Weighted normalised MAD of residuals, inflated for the degrees of freedom the fit used.

    The degrees of freedom are counted on the effective number of points ``(sum w)^2 / sum w^2``.
    """
    order = np.argsort(resid)
    r, ww = resid[order], w[order]
    centre = _weighted_median(r, ww)
    dev = np.abs(resid - centre)
    order = np.argsort(dev)
    mad = 1.4826 * _weighted_median(dev[order], w[order])
    n_eff = w.sum() ** 2 / np.sum(w**2)
    return float(mad * np.sqrt(n_eff / max(n_eff - n_params, 1.0)))


def _weighted_median(sorted_values: np.ndarray, w: np.ndarray) -> float:
    cum = np.cumsum(w)
    return float(sorted_values[np.searchsorted(cum, 0.5 * cum[-1])])


def bootstrap(form: Form, pts: Points, best: PointFit, n: int, scale: float, rng: np.random.Generator,
              iterations: int = 15) -> np.ndarray:
    """``n`` parameter replicates: refits to the fitted log curve plus resampled log residuals.

    Residuals are centred, inflated by ``sqrt(n_eff / (n_eff - p))`` for the degrees of freedom the fit
    used, multiplied by ``scale`` (the held-out calibration) and drawn with the points' weights, so they
    reflect the noise where the fit counts. All replicates are refitted at once by a batched, box-projected
    Levenberg-Marquardt started at the fit (plain weighted least squares, ``iterations`` steps): a linearised
    covariance would be unbounded along directions the data do not pin down (an ``m4`` plateau far before
    the data), while refits stay among curves that fit the points.
    """
    p = best.theta.size
    if n == 0:
        return np.empty((0, p))
    w = pts.weights
    resid = log_residuals(form, best.theta, pts)
    n_eff = w.sum() ** 2 / np.sum(w**2)
    resid = (resid - np.sum(w * resid) / w.sum()) * np.sqrt(n_eff / max(n_eff - p, 1.0)) * scale
    fitted = np.log(np.maximum(form.evaluate(best.theta, pts.t), pts.floor))
    log_y = fitted[None, :] + resid[rng.choice(resid.size, size=(n, resid.size), p=w / w.sum())]
    return _batch_refit(form, pts, log_y, w, best.theta, best.box, iterations)


def _batch_refit(form: Form, pts: Points, log_y: np.ndarray, w: np.ndarray, theta0: np.ndarray, box: Bounds,
                 iterations: int) -> np.ndarray:
    lo, hi = box
    root_w = np.sqrt(w)[None, :]
    n, p = log_y.shape[0], theta0.size

    def resid(theta: np.ndarray) -> np.ndarray:
        return root_w * (np.log(np.maximum(form.evaluate(theta, pts.t), pts.floor)) - log_y)

    theta = np.tile(theta0, (n, 1))
    r = resid(theta)
    cost = np.sum(r**2, axis=1)
    damping = np.full(n, 1e-3)
    width = np.where(np.isfinite(hi - lo), hi - lo, np.maximum(np.abs(theta0), 1.0))
    h = 1e-6 * np.maximum(width, 1e-12)
    for _ in range(iterations):
        jac = np.empty((n, r.shape[1], p))
        for j in range(p):
            step = np.where(theta[:, j] + h[j] <= hi[j], h[j], -h[j])
            moved = theta.copy()
            moved[:, j] += step
            jac[:, :, j] = (resid(moved) - r) / step[:, None]
        jtj = np.einsum("bni,bnj->bij", jac, jac)
        grad = np.einsum("bni,bn->bi", jac, r)
        diag = np.einsum("bii->bi", jtj) + 1e-12
        system = jtj + (damping[:, None] * diag)[:, :, None] * np.eye(p)[None]
        try:
            delta = np.linalg.solve(system, -grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = -np.einsum("bij,bj->bi", np.linalg.pinv(system), grad)
        trial = np.clip(theta + delta, lo, hi)
        r_trial = resid(trial)
        cost_trial = np.sum(r_trial**2, axis=1)
        better = cost_trial < cost
        theta[better], r[better], cost[better] = trial[better], r_trial[better], cost_trial[better]
        damping = np.clip(np.where(better, damping / 3.0, damping * 4.0), 1e-9, 1e9)
    return theta


def _linear_part(form: Form, pts: Points, shapes: np.ndarray, box: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Best clipped linear parameters for each row of ``shapes`` (weighted, linear space) and the weighted
    squared log error they give."""
    lo, hi = box
    t, y, w = pts.t, pts.y, pts.weights
    if not form.has_amplitude:
        floor = np.full(shapes.shape[0], np.clip(np.sum(w * y) / w.sum(), lo[0], hi[0]))
        return floor[:, None], _log_sse(floor[:, None] + 0 * t[None, :], pts, w)
    g = form.shape(t[None, :], *[shapes[:, i : i + 1] for i in range(shapes.shape[1])])
    amp_at = form.n_params - shapes.shape[1] - 1
    floor = np.zeros(shapes.shape[0])
    wn = w / w.sum()
    if form.has_floor:
        gm = g @ wn
        gc = g - gm[:, None]
        slope = np.clip((gc * wn) @ (y - y @ wn) / np.maximum((gc**2) @ wn, 1e-300), lo[amp_at], hi[amp_at])
        floor = np.clip(y @ wn - slope * gm, lo[0], hi[0])
    amp = ((y[None, :] - floor[:, None]) * g) @ wn / np.maximum((g**2) @ wn, 1e-300)
    amp = np.clip(amp, lo[amp_at], hi[amp_at])
    curves = floor[:, None] + amp[:, None] * g
    linear = np.column_stack([floor, amp]) if form.has_floor else amp[:, None]
    return linear, _log_sse(curves, pts, w)


def _log_sse(curves: np.ndarray, pts: Points, w: np.ndarray) -> np.ndarray:
    return ((np.log(np.maximum(curves, pts.floor)) - pts.log_y[None, :]) ** 2) @ w


def _starts(form: Form, pts: Points, box: Bounds, n_starts: int, rng: np.random.Generator) -> np.ndarray:
    """The ``n_starts`` best of a shape grid plus seeded random shapes, linear parts solved in closed form."""
    k = len(form.shape_names)
    if k == 0:
        linear, _ = _linear_part(form, pts, np.zeros((1, 0)), box)
        return linear
    s_lo, s_hi = box[0][-k:], box[1][-k:]
    u = rng.random((_N_RANDOM_STARTS, k))
    log_lo, log_hi = np.log(np.maximum(s_lo, 5e-4 * s_hi)), np.log(s_hi)
    rand = np.where(s_lo >= 0, np.exp(log_lo + u * (log_hi - log_lo)), s_lo + u * (s_hi - s_lo))
    shapes = np.vstack([form.shape_grid(pts.half), rand])
    linear, sse = _linear_part(form, pts, shapes, box)
    best = np.argsort(sse, kind="stable")[:n_starts]
    return np.hstack([linear[best], shapes[best]])


def _local(form: Form, pts: Points, w: np.ndarray, x0: np.ndarray, box: Bounds, f_scale: float,
           max_nfev: int = 200) -> OptimizeResult:
    root_w = np.sqrt(w)
    return least_squares(
        lambda th: root_w * log_residuals(form, th, pts),
        np.clip(x0, *box),
        bounds=box,
        loss="soft_l1",
        f_scale=f_scale,
        x_scale="jac",
        max_nfev=max_nfev,
    )
