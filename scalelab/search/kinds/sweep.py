"""Single-dimension and compound scaling at matched FLOPs multiples K (the seed report's Figures 1 and
6): width w = sqrt K, depth d = K, resolution r = sqrt K, compound phi = ln K / ln(alpha beta^2 gamma^2).
K = 1 is the base network, shared by every curve."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import torch

from scalelab.arch.scaling import Scale, apply, phi_for
from scalelab.cost_cache import cached_cost
from scalelab.errors import SearchError
from scalelab.search.kinds import Plan, Planned, register
from scalelab.search.kinds.coefficients import SEED_COEFFICIENTS, check_coefficients, compound_point, measured
from scalelab.search.kinds.enumerated import CHOICES, EnumeratedKind, dedupe, not_needed_line
from scalelab.search.record import Status, TrialRecord
from scalelab.units import si

if TYPE_CHECKING:
    import pandas as pd

    from scalelab.arch.spec import NetworkSpec

    from scalelab.search.config import StudyConfig
    from scalelab.search.summary import NetworkResult, Summary

DIMENSIONS = ("width", "depth", "resolution", "compound")
VERDICT_LEVEL = 0.95
"""Confidence of the compound-against-single verdicts, simultaneous over the comparisons (and shared among
the looks of ``settle_after``)."""
BASE = "base"
"""The ``dimension`` parameter of the K = 1 trial (its record's dimension is None)."""


def single_scale(dimension: str, k: float) -> Scale:
    """Multipliers that grow the predicted FLOPs k-fold along one dimension."""
    return {"width": Scale(1.0, math.sqrt(k), 1.0), "depth": Scale(float(k), 1.0, 1.0),
            "resolution": Scale(1.0, 1.0, math.sqrt(k))}[dimension]


@dataclass(frozen=True)
class SweepSettings:
    alpha: float = SEED_COEFFICIENTS[0]
    beta: float = SEED_COEFFICIENTS[1]
    gamma: float = SEED_COEFFICIENTS[2]
    multiples: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    dimensions: tuple[str, ...] = DIMENSIONS
    add: tuple[str, ...] = ()
    """Networks beyond every dimension at every multiple, each 'DIMENSION:K' (for example 'compound:3.3'):
    one network placed where a verdict needs it, without training the other dimensions there too."""

    def __post_init__(self) -> None:
        check_coefficients(self.alpha, self.beta, self.gamma)
        if not self.multiples or any(not k >= 1 for k in self.multiples):
            raise SearchError(f"sweep multiples must be numbers >= 1, got {list(self.multiples)}")
        for d in self.dimensions:
            if d not in DIMENSIONS:
                raise SearchError(f"unknown dimension {d!r}; choose one of {', '.join(DIMENSIONS)}")
        self.added()

    def added(self) -> list[tuple[str, float]]:
        """``add`` as (dimension, K) pairs."""
        pairs = []
        for item in self.add:
            dim, _, k = str(item).partition(":")
            try:
                multiple = float(k.removesuffix("x"))
            except ValueError:
                multiple = float("nan")
            if dim not in DIMENSIONS or not multiple > 1:
                raise SearchError(f"cannot read the added network {item!r}: write DIMENSION:K with DIMENSION one "
                                  f"of {', '.join(DIMENSIONS)} and K > 1, for example 'compound:3.3'")
            pairs.append((dim, multiple))
        return pairs


@register
class Sweep(EnumeratedKind):
    name = "sweep"
    title = "scaling sweep: single dimensions and compound"
    settings = SweepSettings
    report_sections = ("scaling", "compound", "curves", "architecture", "models")
    settles = True
    growable = ("multiples", "dimensions", "add")

    def plan(self, config: StudyConfig, num_classes: int, device: torch.device) -> Plan:
        s: SweepSettings = config.search
        base = config.base.resolve(num_classes)
        base_flops = cached_cost(base).flops
        networks: list[Planned] = []
        for k in s.multiples:
            if k == 1:
                networks.append(measured(base, base_flops, scale=Scale(), multiple=1.0))
            else:
                networks += [scaled_network(config, base, base_flops, dim, k) for dim in s.dimensions]
        networks += [scaled_network(config, base, base_flops, dim, k) for dim, k in s.added()]
        return Plan(base, base_flops, dedupe(networks), {CHOICES: {"dimension": [BASE, *DIMENSIONS]}})

    def params(self, planned: Planned) -> dict[str, float | str]:
        return {"dimension": planned.point.dimension or BASE, "multiple": planned.point.multiple}

    def summary(self, study: optuna.Study, config: StudyConfig, plan: Plan, records: list[TrialRecord],
                out_dir: Path, out: str | None) -> Summary:
        """The networks, then compound against each single dimension at equal FLOPs (the report's verdicts)."""
        from scalelab.analysis.compare import verdict_line

        summary = super().summary(study, config, plan, records, out_dir, out)
        verdicts = list(_verdicts(records, config).itertuples(index=False))
        nearer = {c.dimension: nearer_line(config, plan, c) for c in verdicts
                  if c.answered and c.variance == "bracket" and c.verdict == "none" and not c.identical}
        summary.lines += [verdict_line(c) for c in verdicts] + list(nearer.values())
        settled = not_needed_line(study, config)
        if settled is not None:
            summary.lines.append(settled[0])
        summary.data["compound_vs_single"] = [
            {**{k: getattr(c, k) for k in ("dimension", "verdict", "diff", "lower", "upper", "level", "flops_ref",
                                           "variance", "networks", "seeds")}, "nearer": nearer.get(c.dimension)}
            for c in verdicts if c.answered]
        return summary

    def settled(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> str | None:
        """Settled once every comparison of compound scaling with a single dimension has a verdict (each
        look at :meth:`StudyConfig.judged_at`); a 'no clear difference' keeps the seeds coming."""
        verdicts = _verdicts(records, config)
        if verdicts.empty or not (verdicts["answered"] & (verdicts["verdict"] != "none")).all():
            return None
        seeds = int(verdicts["seeds"].min())
        said = "; ".join(f"{c.dimension}: {c.verdict} more accurate "
                         f"({100 * c.lower:+.1f} to {100 * c.upper:+.1f} points)"
                         for c in verdicts.itertuples(index=False))
        return f"compound against every single dimension decided after {seeds} seeds ({said})"

    def budget_check_networks(self, results: list[NetworkResult]) -> list[NetworkResult]:
        """The most accurate compound network and the most accurate single-dimension one: whether compound
        scaling's place against single dimensions holds with more training (the two most accurate networks
        overall where there is no compound network)."""
        ranked = sorted(results, key=lambda n: -n.mean)
        compound = [n for n in ranked if n.first.point.dimension == "compound"]
        single = [n for n in ranked if n.first.point.dimension not in (None, "compound")]
        return [single[0], compound[0]] if compound and single else ranked[:2]


def scaled_network(config: StudyConfig, base: NetworkSpec, base_flops: int, dim: str, k: float) -> Planned:
    """The sweep's network of dimension ``dim`` at FLOPs multiple ``k``, rounded as the study rounds layers."""
    s: SweepSettings = config.search
    name, layers = f"{base.name}-{dim}{k:g}x", config.base.layer_rounding
    if dim == "compound":
        phi = phi_for(k, s.alpha, s.beta, s.gamma)
        return compound_point(base, base_flops, s.alpha, s.beta, s.gamma, phi, name, k, layers=layers)
    scale = single_scale(dim, k)
    return measured(apply(base, scale, name=name, layers=layers), base_flops, scale=scale, dimension=dim, multiple=k)


NEARER_STEP = 0.05
"""Step of the FLOPs multiples :func:`nearer_line` tries between two bracketing networks."""


def nearer_line(config: StudyConfig, plan: Plan, c: Any) -> str:
    """For an open verdict read between two networks of one dimension: the ``--add`` that would place a network
    of that dimension nearest the comparison's FLOPs, or that none lands nearer than the two under the study's
    rounding (then only more seeds narrow it). Plans candidates only; nothing is trained."""
    dim, target = c.bracketed, c.flops_ref
    own = [n for n in plan.networks if n.point.dimension in (dim, None)]
    below = max((n for n in own if n.cost.flops <= target), key=lambda n: n.cost.flops, default=None)
    above = min((n for n in own if n.cost.flops >= target), key=lambda n: n.cost.flops, default=None)
    where = f"A {dim} network nearer {si(target, 'multiply-adds')}"
    if below is None or above is None:  # not a bracket of this plan's networks
        return f"{where}: resume the sweep with --add {dim}:K; `scalelab plan` shows where each K lands."
    k_lo, k_hi = below.point.multiple or 1.0, above.point.multiple or 1.0
    gap = min(target - below.cost.flops, above.cost.flops - target)
    candidates = [scaled_network(config, plan.base, plan.base_flops, dim, float(k))
                  for k in np.round(np.arange(k_lo + NEARER_STEP, k_hi, NEARER_STEP), 4)]
    best = min(candidates, key=lambda n: abs(n.cost.flops - target), default=None)
    if best is None or abs(best.cost.flops - target) >= gap:
        return (f"{where}: none between {dim} {k_lo:g}x and {k_hi:g}x lands nearer than those two under this "
                f"rounding (tried every {NEARER_STEP:g}x); more seeds are what narrows this interval.")
    return (f"{where}: --add {dim}:{best.point.multiple:g} lands at {si(best.cost.flops, 'multiply-adds')} "
            f"(resume the sweep with it).")


def _verdicts(records: list[TrialRecord], config: StudyConfig) -> pd.DataFrame:
    """Compound against each single dimension on the complete trials, at the level of one look."""
    import pandas as pd

    from scalelab.analysis.compare import compound_vs_single
    from scalelab.analysis.results import row

    done = [row(r) for r in records if r.status is Status.COMPLETE]
    return compound_vs_single(pd.DataFrame(done), level=config.judged_at(VERDICT_LEVEL)) if done else pd.DataFrame()
