"""What a new study will train, worked out once when it is created and stored with it: the baseline
network and its cost, absolute targets and caps, and for enumerated kinds the list of points."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from scalelab.arch.build import build
from scalelab.arch.scaling import Scale, apply, compound
from scalelab.arch.spec import NetworkSpec
from scalelab.arch.zoo import resolve
from scalelab.cost import cost, measure_latency, training_memory
from scalelab.search import grid
from scalelab.search.config import FamilySettings, StudyConfig, SweepSettings
from scalelab.search.points import Point, dedupe, point
from scalelab.search.targets import parse_target


@dataclass(frozen=True)
class Plan:
    """``baseline`` is the skeleton (baseline search) or the network scaled (grid, family, sweep); None
    for compare. ``resolved`` holds absolute amounts derived from the settings (targets, caps) and, for a
    grid, every candidate with its predicted and measured FLOPs ratio."""

    baseline: NetworkSpec | None
    baseline_flops: int | None
    points: list[Point] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)


def make_plan(config: StudyConfig, num_classes: int, device: torch.device) -> Plan:
    """Work out the plan (costs networks with fvcore: seconds to a minute for a grid)."""
    if config.kind == "compare":
        specs = [resolve(name, num_classes) for name in config.search.models]
        return Plan(None, None, dedupe([point(s) for s in specs]))
    base = config.model.resolve(num_classes)
    base_flops = cost(base).flops
    if config.kind == "baseline":
        return Plan(base, base_flops, [], _baseline_limits(config, base, base_flops, device))
    if config.kind == "grid":
        multiple = parse_target(config.search.target, "--target-flops").multiple_of(base_flops)
        found = grid.candidates(base, base_flops, multiple, config.search)
        points = [point(c.spec, dimension="compound", depth=c.alpha, width=c.beta, resolution=c.gamma,
                        alpha=c.alpha, beta=c.beta, gamma=c.gamma, phi=1.0, multiple=multiple,
                        predicted_ratio=c.predicted, measured_ratio=c.measured)
                  for c in found if c.status != "off-target"]
        return Plan(base, base_flops, dedupe(points),
                    {"multiple": multiple, "candidates": [c.row() for c in found]})
    if config.kind == "family":
        return Plan(base, base_flops, dedupe(family_points(base, base_flops, config.search)))
    return Plan(base, base_flops, dedupe(sweep_points(base, config.search)))


def family_points(base: NetworkSpec, base_flops: int, s: FamilySettings) -> list[Point]:
    """The compound family at each phi (or at the phi that reaches each FLOPs target)."""
    growth = s.alpha * s.beta**2 * s.gamma**2
    phis = [math.log(parse_target(t, "--target-flops").multiple_of(base_flops)) / math.log(growth)
            for t in s.targets] or list(s.phis)
    return [_compound(base, s, phi, f"{base.name}-phi{phi:.3g}") for phi in phis]


def sweep_points(base: NetworkSpec, s: SweepSettings) -> list[Point]:
    """Each dimension alone and compound, at each FLOPs multiple; K = 1 is the baseline, shared by every
    curve (its dimension is None)."""
    points = []
    for k in s.multiples:
        if k == 1:
            points.append(point(base, depth=1.0, width=1.0, resolution=1.0, multiple=1.0))
            continue
        for dim in s.dimensions:
            name = f"{base.name}-{dim}{k:g}x"
            if dim == "compound":
                points.append(_compound(base, s, math.log(k) / math.log(s.alpha * s.beta**2 * s.gamma**2),
                                        name, multiple=k))
                continue
            scale = {"width": Scale(1.0, math.sqrt(k), 1.0), "depth": Scale(float(k), 1.0, 1.0),
                     "resolution": Scale(1.0, 1.0, math.sqrt(k))}[dim]
            points.append(point(apply(base, scale, name=name), dimension=dim, depth=scale.depth,
                                width=scale.width, resolution=scale.resolution, multiple=k))
    return points


def _compound(base: NetworkSpec, s: FamilySettings | SweepSettings, phi: float, name: str,
              multiple: float | None = None) -> Point:
    scale = compound(s.alpha, s.beta, s.gamma, phi)
    return point(apply(base, scale, name=name), dimension="compound", depth=scale.depth, width=scale.width,
                 resolution=scale.resolution, alpha=s.alpha, beta=s.beta, gamma=s.gamma, phi=phi,
                 multiple=multiple if multiple is not None else scale.flops_multiplier)


def _baseline_limits(config: StudyConfig, skeleton: NetworkSpec, flops: int,
                     device: torch.device) -> dict[str, Any]:
    """T of the reward in absolute units, and the hard caps; multiples are of the skeleton's cost."""
    s = config.search
    latency = s.cost == "latency"
    reference = measure_latency(build(skeleton), skeleton.resolution, 1, device=device).median_ms \
        if latency else flops
    out: dict[str, Any] = {
        "target": parse_target(s.target, "--target", "ms" if latency else "").amount_for(reference),
        "cost_unit": "ms" if latency else "multiply-adds",
        "max_flops": parse_target(s.max_flops, "--max-flops").amount_for(flops) if s.max_flops else None,
        "max_memory": None}
    if s.max_memory:
        cap = parse_target(s.max_memory, "--max-memory")
        out["max_memory"] = cap.amount if cap.amount is not None else cap.multiple * training_memory(
            build(skeleton), skeleton.resolution, config.train.batch_size, device=device)
    return out
