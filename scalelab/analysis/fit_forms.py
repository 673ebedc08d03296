"""Registry of saturating curve forms for error-versus-compute fits.

Every form except ``flat`` is ``err(C) = E + A * g(t; shape)`` with ``t = ln(C / c_ref)``, where ``c_ref`` is the geometric
midpoint of the fitted compute range, so ``t`` runs over ``[-h, h]`` on the data. Power-law shapes are
normalised to ``g(0) = 1`` (``A`` is the reducible error at ``c_ref``, which decorrelates ``A`` from the
exponent); sigmoid-like shapes run from 1 down to 0 (``A`` is the whole drop). Every shape is strictly
decreasing inside its bounds, so with ``E >= 0`` and ``A >= 0`` a prediction is non-negative, never rises
with compute and tends to ``E``.

Names follow the learning-curve literature (Domhan et al. 2015; Mohr et al. 2022, LCDB). Shape bounds are
scaled by the half-range ``h`` so that they mean the same on any compute span; they keep knees and
inflection points at or before the largest observed compute, which rules out forms that "discover" a cliff
just beyond the data. Every rate may be zero, so every form can fit a flat curve; ``flat`` (``err = E``) is
the curve with no trend at all, the honest answer for a flat or noisy series.

``m4`` is the estimator M4 of Alabdulmohsin, Neyshabur and Zhai (2022), ``(err - E) / (e0 - err)^a =
b * C^-c``: an early plateau at ``e0 = E + A``, a power-law middle and a floor. With ``a = 1`` it is
``mmf4``; its shape has no closed form and is solved by Newton's method on the logit of ``g``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_expit

ShapeFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Form:
    """One named curve family: ``E + A * g(t; shape)`` (``E`` fixed at 0 when ``has_floor`` is false)."""

    name: str
    formula: str
    shape_names: tuple[str, ...]
    has_floor: bool
    shape: ShapeFn
    shape_bounds: Callable[[float], tuple[np.ndarray, np.ndarray]]
    grid_size: int
    shape_public: Callable[[np.ndarray, float], tuple[float, ...]]
    has_amplitude: bool = True

    @property
    def param_names(self) -> tuple[str, ...]:
        return (("E",) if self.has_floor else ()) + (("A",) if self.has_amplitude else ()) + self.shape_names

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def evaluate(self, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Curve at log-compute ``t``; ``theta`` of shape ``(p,)`` gives ``(m,)``, ``(B, p)`` gives ``(B, m)``."""
        rows = np.atleast_2d(theta)
        cols = [rows[:, i : i + 1] for i in range(rows.shape[1])]
        floor = cols.pop(0) if self.has_floor else 0.0
        if not self.has_amplitude:
            out = floor + np.zeros((1, t.size))
            return out[0] if np.ndim(theta) == 1 else out
        out = floor + cols[0] * self.shape(t[None, :], *cols[1:])
        return out[0] if np.ndim(theta) == 1 else out

    def public(self, theta: np.ndarray, c_ref: float) -> dict[str, float]:
        """Named parameters, with shape parameters in compute units where they are compute scales."""
        n_linear = self.n_params - len(self.shape_names)
        values = [float(v) for v in theta[:n_linear]] + list(self.shape_public(theta[n_linear:], c_ref))
        return dict(zip(self.param_names, values))

    def shape_grid(self, h: float) -> np.ndarray:
        """Deterministic grid of starting shapes, ``(m, len(shape_names))``; rates spaced in log."""
        lo, hi = self.shape_bounds(h)
        if lo.size == 0:
            return np.zeros((1, 0))
        axes = [_axis(a, b, self.grid_size) for a, b in zip(lo, hi)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.column_stack([m.ravel() for m in mesh])


def _axis(lo: float, hi: float, n: int) -> np.ndarray:
    """Points strictly inside ``(lo, hi)``: log-spaced for non-negative ranges, linear otherwise."""
    if lo >= 0:
        return np.exp(np.linspace(np.log(max(lo, 5e-4 * hi)), np.log(hi), n + 2)[1:-1])
    return np.linspace(lo, hi, n + 2)[1:-1]


def _rate_bounds(h: float) -> tuple[float, float]:
    """A rate times the half-range (total log-decay over half the data) between 0 (flat) and 20.

    Starting grids begin at a rate of 0.01 / h; the fit itself may reach 0.
    """
    return 0.0, 20.0 / h


def _pow(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.exp(-alpha * t)


def _pow4(t: np.ndarray, alpha: np.ndarray, d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        log_shift = np.log(d)
    return np.exp(-alpha * (np.logaddexp(t, log_shift) - np.log1p(d)))


def _mmf4(t: np.ndarray, k: np.ndarray, t0: np.ndarray) -> np.ndarray:
    return np.exp(log_expit(-k * (t - t0)))


def _wbl4(t: np.ndarray, k: np.ndarray, t0: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(-np.exp(k * (t - t0)))


def _exp3(t: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(-b * np.exp(t))


def _flat(t: np.ndarray) -> np.ndarray:
    return np.ones_like(t)


_M4_NEWTON_STEPS = 40


def _m4(t: np.ndarray, c: np.ndarray, t0: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``g`` in (0, 1] solving ``g / (1 - g)^a = exp(-c (t - t0))``, by Newton's method on ``z = logit(g)``.

    ``F(z) = log expit(z) - a log expit(-z) - s`` is increasing with slope between ``min(1, a)`` and
    ``max(1, a)``; steps are capped at 4 so that the iteration never overshoots far.
    """
    s = -c * (t - t0)
    a = np.broadcast_to(a, s.shape)
    z = np.where(s > 0, s / a, s)
    for _ in range(_M4_NEWTON_STEPS):
        lp, lm = log_expit(z), log_expit(-z)
        step = np.clip((lp - a * lm - s) / (np.exp(lm) + a * np.exp(lp)), -4.0, 4.0)
        z = z - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return np.exp(log_expit(z))


def _m4_bounds(h: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _rate_bounds(h)
    return np.array([lo, -3.0 * h, 0.1]), np.array([hi, h, 10.0])


def _no_bounds(h: float) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0), np.zeros(0)


def _pow_bounds(h: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _rate_bounds(h)
    return np.array([lo]), np.array([hi])


def _pow4_bounds(h: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _rate_bounds(h)
    return np.array([lo, 0.0]), np.array([hi, np.exp(h)])


def _sigmoid_bounds(h: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _rate_bounds(h)
    return np.array([lo, -3.0 * h]), np.array([hi, h])


def _exp3_bounds(h: float) -> tuple[np.ndarray, np.ndarray]:
    """Decay rate ``c_ref / Cs`` from 0 (flat) to 20 over the smallest compute."""
    return np.array([0.0]), np.array([20.0 * np.exp(h)])


FORMS: dict[str, Form] = {
    f.name: f
    for f in (
        Form("pow2", "A * (C/c_ref)^-alpha", ("alpha",), False, _pow, _pow_bounds, 24,
             lambda s, c: (float(s[0]),)),
        Form("pow3", "E + A * (C/c_ref)^-alpha", ("alpha",), True, _pow, _pow_bounds, 24,
             lambda s, c: (float(s[0]),)),
        Form("pow4", "E + A * ((C + C0)/(c_ref + C0))^-alpha", ("alpha", "C0"), True, _pow4, _pow4_bounds, 8,
             lambda s, c: (float(s[0]), float(s[1] * c))),
        Form("mmf4", "E + A / (1 + (C/C50)^k)", ("k", "C50"), True, _mmf4,
             _sigmoid_bounds, 8, lambda s, c: (float(s[0]), float(c * np.exp(s[1])))),
        Form("wbl4", "E + A * exp(-(C/Cs)^k)", ("k", "Cs"), True, _wbl4, _sigmoid_bounds, 8,
             lambda s, c: (float(s[0]), float(c * np.exp(s[1])))),
        Form("exp3", "E + A * exp(-C/Cs)", ("Cs",), True, _exp3, _exp3_bounds, 24,
             lambda s, c: (float(c / s[0]) if s[0] > 0 else float("inf"),)),
        Form("m4", "(err - E) / (E + A - err)^a = (C/C0)^-c", ("c", "C0", "a"), True, _m4, _m4_bounds, 6,
             lambda s, c: (float(s[0]), float(c * np.exp(s[1])), float(s[2]))),
        Form("flat", "E", (), True, _flat, _no_bounds, 1, lambda s, c: (), has_amplitude=False),
    )
}
