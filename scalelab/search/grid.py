"""The alpha-beta-gamma grid of compound scaling (step 1 of the seed report's Section 3.3).

Grid points (alpha for depth, beta for width, gamma for resolution) whose predicted FLOPs growth
alpha * beta^2 * gamma^2 is within ``tolerance`` of the target multiple K are candidates. Rounding
(channels to multiples of 8, layers up, resolution to the pixel) makes the real growth differ, by a lot
at 32 px, where one more pixel can add a row to every feature map of a stride-16 network: so each
candidate is *measured* after rounding, and only those within ``measured_tolerance`` of K are trained.
Candidates that round to the same network are measured and trained once.

Defaults (see :class:`~scalelab.search.config.GridSettings`): alpha in [1, 2], beta and gamma in
[1, 1.5], step 0.1, which is 396 points; for ``efficientnet_b0_32`` at 2x, 20 meet the prediction within
5% and round to 18 distinct networks (each costed in about a second), and a handful measure within 10%.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scalelab.arch.scaling import Scale, apply
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import cost
from scalelab.errors import SearchError
from scalelab.search.config import GridSettings
from scalelab.search.points import network_key


@dataclass(frozen=True)
class Candidate:
    """A grid point meeting the predicted constraint, with its FLOPs measured after rounding.

    ``status``: 'train', 'off-target' (measured ratio outside the tolerance) or 'duplicate' (rounds to
    the network of an earlier candidate, whose results it shares).
    """

    alpha: float
    beta: float
    gamma: float
    predicted: float
    measured: float
    flops: int
    status: str
    spec: NetworkSpec

    def row(self) -> dict:
        """The record kept in the study (no spec: candidates to train carry theirs in the plan)."""
        return dict(alpha=self.alpha, beta=self.beta, gamma=self.gamma, predicted_ratio=self.predicted,
                    measured_ratio=self.measured, flops=self.flops, status=self.status)


def axis(low: float, high: float, step: float) -> list[float]:
    """low, low + step, ... up to high (inclusive, rounded to 6 decimals so 1.1 stays 1.1)."""
    return sorted({round(v, 6) for v in np.arange(low, high + step / 2, step)})


def candidates(baseline: NetworkSpec, base_flops: int, multiple: float, settings: GridSettings, *,
               measure: Callable[[NetworkSpec], int] = lambda s: cost(s).flops) -> list[Candidate]:
    """Every grid point within ``settings.tolerance`` of ``multiple``, measured, in grid order.

    Raises :class:`SearchError` when no point meets the predicted constraint, or none measures within
    ``settings.measured_tolerance``.
    """
    points = [(a, b, g) for a in axis(*settings.alpha, settings.step) for b in axis(*settings.beta, settings.step)
              for g in axis(*settings.gamma, settings.step)
              if abs(a * b * b * g * g - multiple) <= settings.tolerance * multiple]
    if not points:
        raise SearchError(
            f"no grid point has alpha*beta^2*gamma^2 within {settings.tolerance:.0%} of {multiple:g}; "
            "widen the alpha/beta/gamma ranges, use a smaller --step or a larger --tolerance")
    flops: dict[str, int] = {}
    out = []
    for a, b, g in points:
        spec = apply(baseline, Scale(a, b, g), name=f"{baseline.name}-a{a:g}-b{b:g}-g{g:g}")
        key = network_key(spec)
        duplicate = key in flops
        if not duplicate:
            flops[key] = measure(spec)
        ratio = flops[key] / base_flops
        on_target = abs(ratio - multiple) <= settings.measured_tolerance * multiple
        status = "off-target" if not on_target else "duplicate" if duplicate else "train"
        out.append(Candidate(a, b, g, a * b * b * g * g, ratio, flops[key], status, spec))
    if not any(c.status == "train" for c in out):
        closest = min(out, key=lambda c: abs(c.measured - multiple))
        raise SearchError(
            f"{len(out)} grid points meet alpha*beta^2*gamma^2 = {multiple:g} within {settings.tolerance:.0%}, "
            f"but none measures within {settings.measured_tolerance:.0%} of {multiple:g}x the baseline FLOPs "
            f"after rounding (closest: {closest.measured:.3f}x at alpha={closest.alpha:g}, beta={closest.beta:g}, "
            f"gamma={closest.gamma:g}); raise --measured-tolerance or change the ranges")
    return out
