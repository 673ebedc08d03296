"""Compound and single-dimension scaling: pure functions from a spec to a new spec (Eq. 3 and 5).

Rounding rules follow the reference EfficientNet implementations: channels go to the nearest multiple
of 8, never below 90% of the unrounded value; layer counts are rounded up; resolution to the nearest
pixel. Layer counts may instead be rounded to the nearest integer (``layers="nearest"``): on a base with
one or two layers per stage, rounding up turns alpha = 1.2 into 2x the layers of every one-layer stage,
so the seed's alpha = 1.2, beta = 1.1, gamma = 1.15 measures 3.0x instead of 2x on B0 at 32 px; rounded
to the nearest layer, the same coefficients measure 1.97x on half-width B0 at 48 px (README, "Rounding").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple, get_args

from scalelab.arch.spec import NetworkSpec
from scalelab.errors import SpecError

CHANNEL_DIVISOR = 8
LayerRounding = Literal["up", "nearest"]
"""How :func:`apply` rounds scaled layer counts: up (the reference implementations) or to the nearest."""
LAYER_ROUNDING = get_args(LayerRounding)


class Scale(NamedTuple):
    """Multipliers for depth (layers), width (channels) and resolution (pixels)."""

    depth: float = 1.0
    width: float = 1.0
    resolution: float = 1.0

    @property
    def flops_multiplier(self) -> float:
        """Predicted FLOPs growth d * w^2 * r^2 (Section 5.2 of the seed report)."""
        return self.depth * self.width**2 * self.resolution**2


# EfficientNet-B0..B7 as published: (width, depth, resolution in px, dropout).
EFFICIENTNET_FAMILY: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}


def round_filters(channels: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Nearest multiple of ``divisor`` (at least ``divisor``), bumped up if it lost more than 10%."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return int(rounded)


def round_repeats(layers: int, depth: float, rule: LayerRounding = "up") -> int:
    """Layers after depth scaling, rounded up or to the nearest integer (halves up); never below one, so
    a stage never disappears."""
    if rule not in LAYER_ROUNDING:
        raise SpecError(f"layer rounding must be one of {', '.join(LAYER_ROUNDING)}, got {rule!r}")
    scaled = layers * depth
    return max(1, int(math.ceil(scaled) if rule == "up" else math.floor(scaled + 0.5)))


def growth(alpha: float, beta: float, gamma: float) -> float:
    """FLOPs growth per unit of phi, alpha * beta^2 * gamma^2 (the constraint of Eq. 3 sets it near 2)."""
    return Scale(alpha, beta, gamma).flops_multiplier


def phi_for(multiple: float, alpha: float, beta: float, gamma: float) -> float:
    """The phi whose predicted FLOPs growth is ``multiple``: ln K / ln(alpha beta^2 gamma^2)."""
    return math.log(multiple) / math.log(growth(alpha, beta, gamma))


def compound(alpha: float, beta: float, gamma: float, phi: float) -> Scale:
    """(d, w, r) = (alpha^phi, beta^phi, gamma^phi), Eq. 5 of the seed report."""
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (math.isfinite(value) and value > 0):
            raise SpecError(f"{name} must be a positive number, got {value}")
    if not math.isfinite(phi):
        raise SpecError(f"phi must be a finite number, got {phi}")
    return Scale(alpha**phi, beta**phi, gamma**phi)


def apply(spec: NetworkSpec, scale: Scale, *, name: str | None = None, layers: LayerRounding = "up") -> NetworkSpec:
    """A new spec with depth, width and resolution multiplied by ``scale``; ``spec`` is unchanged.
    ``layers`` is the layer rounding rule (:data:`LAYER_ROUNDING`)."""
    for label, value in zip(("depth", "width", "resolution"), scale):
        if not (math.isfinite(value) and value > 0):
            raise SpecError(f"{label} multiplier must be a positive number, got {value}")
    d, w, r = scale
    stages = tuple(
        dataclasses.replace(st, out_channels=round_filters(st.out_channels * w),
                            layers=round_repeats(st.layers, d, layers))
        for st in spec.stages)
    head = dataclasses.replace(
        spec.head,
        channels=round_filters(spec.head.channels * w) if spec.head.channels else 0,
        hidden=tuple(round_filters(h * w) for h in spec.head.hidden))
    return dataclasses.replace(
        spec,
        name=name or spec.name,
        stem=dataclasses.replace(spec.stem, channels=round_filters(spec.stem.channels * w)),
        stages=stages,
        head=head,
        resolution=max(1, round(spec.resolution * r)))


def compound_family(spec: NetworkSpec, alpha: float, beta: float, gamma: float,
                    phis: list[float]) -> list[tuple[float, Scale, NetworkSpec]]:
    """The compound-scaled family of ``spec``: one (phi, scale, spec) per requested phi."""
    out = []
    for phi in phis:
        scale = compound(alpha, beta, gamma, phi)
        out.append((phi, scale, apply(spec, scale, name=f"{spec.name}-phi{phi:g}")))
    return out
