"""The compound coefficients alpha, beta, gamma that families and sweeps scale with, and reading them from
the JSON a grid study saves."""

from __future__ import annotations

import json
import math
from pathlib import Path

from scalelab.arch.scaling import LayerRounding, Scale, apply, compound, growth
from scalelab.arch.spec import NetworkSpec
from scalelab.errors import SearchError
from scalelab.search.kinds import Planned
from scalelab.search.kinds.enumerated import price
from scalelab.search.record import Point

SEED_COEFFICIENTS = (1.2, 1.1, 1.15)  # the seed report's alpha, beta, gamma


def check_coefficients(alpha: float, beta: float, gamma: float) -> None:
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (math.isfinite(value) and value >= 1):
            raise SearchError(f"{name} must be a number >= 1, got {value!r}")
    if growth(alpha, beta, gamma) <= 1:
        raise SearchError("alpha * beta^2 * gamma^2 must exceed 1 for the network to grow")


def read_coefficients(path: str | Path) -> dict[str, float]:
    """alpha, beta, gamma from the JSON that `scalelab grid` saves."""
    try:
        data = json.loads(Path(path).read_text())
        return {k: float(data[k]) for k in ("alpha", "beta", "gamma")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SearchError(f"cannot read alpha, beta, gamma from {path} ({exc}); give the coefficients.json "
                          "written by `scalelab grid`, or --alpha/--beta/--gamma") from exc


def compound_point(base: NetworkSpec, base_flops: int, alpha: float, beta: float, gamma: float, phi: float,
                   name: str, multiple: float | None = None, *, layers: LayerRounding = "up") -> Planned:
    """The base network compound-scaled to ``phi`` (layer counts rounded by rule ``layers``), priced,
    with its point."""
    scale = compound(alpha, beta, gamma, phi)
    return measured(apply(base, scale, name=name, layers=layers), base_flops, dimension="compound", scale=scale, alpha=alpha,
                    beta=beta, gamma=gamma, phi=phi,
                    multiple=multiple if multiple is not None else scale.flops_multiplier)


def measured(spec: NetworkSpec, base_flops: int, *, scale: Scale, **point: object) -> Planned:
    """``spec`` priced, its point completed with the predicted and measured FLOPs ratios."""
    planned = price(spec, Point(scale=scale, **point))
    point_with = Point(**{**vars(planned.point), "predicted_ratio": scale.flops_multiplier,
                          "measured_ratio": planned.cost.flops / base_flops})
    return Planned(planned.spec, point_with, planned.cost)
