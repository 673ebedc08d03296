"""Numerical core of :func:`scalelab.analysis.fit.fit_curve`: bounds, multi-start fit and residual bootstrap.

Points arrive validated, as error-like ``y`` (lower is better) against ``t = ln(C / c_ref)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeResult, least_squares

from scalelab.analysis.fit_forms import Form

_N_RANDOM_STARTS = 32

Bounds = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Points:
    """Validated points in fitting coordinates; ``c_ref`` is the geometric midpoint of ``c_range``."""

    t: np.ndarray
    y: np.ndarray
    c_range: tuple[float, float]
    metric: str

    @property
    def c_ref(self) -> float:
        return float(np.sqrt(self.c_range[0] * self.c_range[1]))

    @property
    def half(self) -> float:
        """Half the log-compute range: ``t`` runs over ``[-half, half]``."""
        return float(0.5 * np.log(self.c_range[1] / self.c_range[0]))


@dataclass(frozen=True)
class PointFit:
    """Best parameters, the soft-L1 scale used, and the robust residual noise estimate."""

    theta: np.ndarray
    f_scale: float
    noise: float


def bounds(form: Form, y: np.ndarray, half: float, metric: str) -> Bounds:
    """Box bounds: ``0 <= E <= min(y)``, ``0 <= A <= 1`` for rates (10 x max for losses), shape bounds."""
    shape_lo, shape_hi = form.shape_bounds(half)
    amp_hi = 1.0 if metric != "loss" else 10.0 * max(float(y.max()), 1e-12)
    lo, hi = [0.0], [amp_hi]
    if form.has_floor:
        lo, hi = [0.0, 0.0], [max(float(y.min()), 1e-12), amp_hi]
    return np.concatenate([lo, shape_lo]), np.concatenate([hi, shape_hi])


def fit_point(form: Form, pts: Points, n_starts: int, rng: np.random.Generator) -> PointFit:
    """Multi-start fit, then a refit with the loss scale set from the residual noise of the first.

    The first pass uses a loss scale of a tenth of the data's spread, so gross outliers already count
    linearly; the refit scales the loss to 1.5 robust standard deviations of the residuals.
    """
    box = bounds(form, pts.y, pts.half, pts.metric)
    floor = 1e-4 * float(np.ptp(pts.y)) + 1e-9
    first = min(
        (_local(form, pts.t, pts.y, x0, box, 0.1 * float(np.ptp(pts.y)) + floor)
         for x0 in _starts(form, pts, box, n_starts, rng)),
        key=lambda res: res.cost,
    )
    noise = _robust_noise(first.fun, form.n_params)
    f_scale = max(1.5 * noise, floor)
    return PointFit(_local(form, pts.t, pts.y, first.x, box, f_scale).x, f_scale, noise)


def bootstrap_residuals(resid: np.ndarray, n_params: int) -> np.ndarray:
    """Centred residuals, inflated by ``sqrt(n / (n - p))`` for the degrees of freedom the fit used."""
    n = resid.size
    return (resid - resid.mean()) * np.sqrt(n / max(n - n_params, 1))


def bootstrap(form: Form, pts: Points, best: PointFit, resid: np.ndarray, n_boot: int,
              rng: np.random.Generator) -> np.ndarray:
    """Parameter replicates ``(n_boot, p)``: refits to the fitted curve plus resampled residuals."""
    fitted = form.evaluate(best.theta, pts.t)
    out = np.empty((n_boot, best.theta.size))
    upper = np.inf if pts.metric == "loss" else 1.0
    for b in range(n_boot):
        y = np.clip(fitted + rng.choice(resid, size=resid.size), 0.0, upper)
        box = bounds(form, y, pts.half, pts.metric)
        out[b] = _local(form, pts.t, y, best.theta, box, best.f_scale).x
    return out


def _linear_part(form: Form, pts: Points, shapes: np.ndarray, box: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """Best clipped ``(E, A)`` (or ``A``) for each row of ``shapes``, and its squared error."""
    lo, hi = box
    t, y = pts.t, pts.y
    g = form.shape(t[None, :], *[shapes[:, i : i + 1] for i in range(shapes.shape[1])])
    amp_at = form.n_params - shapes.shape[1] - 1
    floor = np.zeros(shapes.shape[0])
    if form.has_floor:
        gc = g - g.mean(axis=1, keepdims=True)
        slope = np.clip((gc @ y) / np.maximum((gc**2).sum(axis=1), 1e-300), lo[amp_at], hi[amp_at])
        floor = np.clip(y.mean() - slope * g.mean(axis=1), lo[0], hi[0])
    amp = ((y[None, :] - floor[:, None]) * g).sum(axis=1) / np.maximum((g**2).sum(axis=1), 1e-300)
    amp = np.clip(amp, lo[amp_at], hi[amp_at])
    sse = ((floor[:, None] + amp[:, None] * g - y[None, :]) ** 2).sum(axis=1)
    linear = np.column_stack([floor, amp]) if form.has_floor else amp[:, None]
    return linear, sse


def _starts(form: Form, pts: Points, box: Bounds, n_starts: int, rng: np.random.Generator) -> np.ndarray:
    """The ``n_starts`` best of a shape grid plus seeded random shapes, linear parts solved in closed form."""
    k = len(form.shape_names)
    s_lo, s_hi = box[0][-k:], box[1][-k:]
    u = rng.random((_N_RANDOM_STARTS, k))
    log_lo, log_hi = np.log(np.maximum(s_lo, 1e-3 * s_hi)), np.log(s_hi)
    rand = np.where(s_lo >= 0, np.exp(log_lo + u * (log_hi - log_lo)), s_lo + u * (s_hi - s_lo))
    shapes = np.vstack([form.shape_grid(pts.half), rand])
    linear, sse = _linear_part(form, pts, shapes, box)
    best = np.argsort(sse, kind="stable")[:n_starts]
    return np.hstack([linear[best], shapes[best]])


def _local(form: Form, t: np.ndarray, y: np.ndarray, x0: np.ndarray, box: Bounds, f_scale: float) -> OptimizeResult:
    return least_squares(
        lambda th: form.evaluate(th, t) - y,
        np.clip(x0, *box),
        bounds=box,
        loss="soft_l1",
        f_scale=f_scale,
        x_scale="jac",
        max_nfev=200,
    )


def _robust_noise(resid: np.ndarray, n_params: int) -> float:
    """Normalised MAD of residuals, inflated for the degrees of freedom the fit used."""
    n = resid.size
    mad = 1.4826 * np.median(np.abs(resid - np.median(resid)))
    return float(mad * np.sqrt(n / max(n - n_params, 1)))
