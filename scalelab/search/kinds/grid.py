"""The alpha-beta-gamma grid of compound scaling (step 1 of the seed report's Section 3.3).

Grid points (alpha for depth, beta for width, gamma for resolution) whose predicted FLOPs growth
alpha * beta^2 * gamma^2 is within ``tolerance`` of the target multiple K are candidates. Rounding
(channels to multiples of 8, layers up, resolution to the pixel) makes the real growth differ, by a lot
at 32 px, where one more pixel can add a row to every feature map of a stride-16 network: so each
candidate is *measured* after rounding, and only those within ``measured_tolerance`` of K are trained.
Candidates that round to the same network are measured and trained once.

Defaults: alpha in [1, 2], beta and gamma in [1, 1.5], step 0.1, which is 396 points; for
``efficientnet_b0_32`` at 2x, 20 meet the prediction within 5% and round to 18 distinct networks (each
costed in about a second), and a handful measure within 10%.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import torch

from scalelab.arch.scaling import LayerRounding, Scale, apply, growth
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import Cost as NetworkCost
from scalelab.cost_cache import cached_cost
from scalelab.errors import SearchError
from scalelab.files import write_text_atomic
from scalelab.search.kinds import Plan, Planned, register
from scalelab.search.kinds.enumerated import EnumeratedKind, dedupe, not_needed_line
from scalelab.search.record import Point, Status, TrialCost, TrialRecord
from scalelab.search.targets import Target, parse_target
from scalelab.units import si

if TYPE_CHECKING:
    from scalelab.analysis.separation import Separation
    from scalelab.search.config import StudyConfig
    from scalelab.search.summary import Summary

MEDIAN_PRUNER_STARTUP = 4  # finished trials before the median pruner starts judging
SEPARATION_LEVEL = 0.95
"""Confidence with which the summary says whether the winner is separated from every other network."""


@dataclass(frozen=True)
class GridSettings:
    """Ranges are [low, high] with ``step``; ``tolerance`` bounds |alpha*beta^2*gamma^2 - K| / K,
    ``measured_tolerance`` the measured FLOPs ratio's; ``prune`` stops trials below the median early."""

    target: Target = parse_target("2x", "target")
    alpha: tuple[float, float] = (1.0, 2.0)
    beta: tuple[float, float] = (1.0, 1.5)
    gamma: tuple[float, float] = (1.0, 1.5)
    step: float = 0.1
    tolerance: float = 0.05
    measured_tolerance: float = 0.10
    prune: bool = True

    def __post_init__(self) -> None:
        if self.target.unit:
            raise SearchError(f"the grid's target is FLOPs (2x or 800M), got '{self.target}'")
        for name in ("alpha", "beta", "gamma"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise SearchError(f"{name} range must satisfy 0 < low <= high, got [{low}, {high}]")
        if not self.step > 0 or not self.tolerance >= 0 or not self.measured_tolerance >= 0:
            raise SearchError("--step must be positive and the tolerances non-negative")


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
    params: int
    status: str
    spec: NetworkSpec

    def row(self) -> dict[str, Any]:
        """The record kept in the plan (no spec: candidates to train carry theirs as planned networks)."""
        return dict(alpha=self.alpha, beta=self.beta, gamma=self.gamma, predicted_ratio=self.predicted,
                    measured_ratio=self.measured, flops=self.flops, status=self.status)


def axis(low: float, high: float, step: float) -> list[float]:
    """low, low + step, ... up to high (inclusive, rounded to 6 decimals so 1.1 stays 1.1)."""
    return sorted({round(v, 6) for v in np.arange(low, high + step / 2, step)})


def candidates(base: NetworkSpec, base_flops: int, multiple: float, settings: GridSettings, *,
               measure: Callable[[NetworkSpec], NetworkCost] = cached_cost,
               layers: LayerRounding = "up") -> list[Candidate]:
    """Every grid point within ``settings.tolerance`` of ``multiple``, measured (layer counts rounded by
    rule ``layers``), in grid order.

    Raises :class:`SearchError` when no point meets the predicted constraint, or none measures within
    ``settings.measured_tolerance``.
    """
    points = [(a, b, g) for a in axis(*settings.alpha, settings.step) for b in axis(*settings.beta, settings.step)
              for g in axis(*settings.gamma, settings.step)
              if abs(growth(a, b, g) - multiple) <= settings.tolerance * multiple]
    if not points:
        raise SearchError(
            f"no grid point has alpha*beta^2*gamma^2 within {settings.tolerance:.0%} of {multiple:g}; "
            "widen the alpha/beta/gamma ranges, use a smaller --step or a larger --tolerance")
    measured: dict[str, NetworkCost] = {}
    out = []
    for a, b, g in points:
        spec = apply(base, Scale(a, b, g), name=f"{base.name}-a{a:g}-b{b:g}-g{g:g}", layers=layers)
        key = spec.network_key
        duplicate = key in measured
        if not duplicate:
            measured[key] = measure(spec)
        c = measured[key]
        ratio = c.flops / base_flops
        on_target = abs(ratio - multiple) <= settings.measured_tolerance * multiple
        status = "off-target" if not on_target else "duplicate" if duplicate else "train"
        out.append(Candidate(a, b, g, growth(a, b, g), ratio, c.flops, c.params, status, spec))
    if not any(c.status == "train" for c in out):
        closest = min(out, key=lambda c: abs(c.measured - multiple))
        raise SearchError(
            f"{len(out)} grid points meet alpha*beta^2*gamma^2 = {multiple:g} within {settings.tolerance:.0%}, "
            f"but none measures within {settings.measured_tolerance:.0%} of {multiple:g}x the base FLOPs "
            f"after rounding (closest: {closest.measured:.3f}x at alpha={closest.alpha:g}, beta={closest.beta:g}, "
            f"gamma={closest.gamma:g}); raise --measured-tolerance or change the ranges")
    return out


@register
class Grid(EnumeratedKind):
    name = "grid"
    title = "grid search of α, β, γ"
    settings = GridSettings
    report_sections = ("grid", "curves", "architecture", "models")
    settles = True

    def plan(self, config: StudyConfig, num_classes: int, device: torch.device) -> Plan:
        base = config.base.resolve(num_classes)
        base_cost = cached_cost(base)
        multiple = config.search.target.multiple_of(base_cost.flops)
        found = candidates(base, base_cost.flops, multiple, config.search, layers=config.base.layer_rounding)
        planned = []
        for c in found:
            if c.status == "off-target":
                continue
            point = Point(dimension="compound", scale=Scale(c.alpha, c.beta, c.gamma), alpha=c.alpha, beta=c.beta,
                          gamma=c.gamma, phi=1.0, multiple=multiple, predicted_ratio=c.predicted,
                          measured_ratio=c.measured)
            planned.append(Planned(c.spec, point, TrialCost(params=c.params, flops=c.flops)))
        return Plan(base, base_cost.flops, dedupe(planned),
                    {"multiple": multiple, "candidates": [c.row() for c in found]})

    def params(self, planned: Planned) -> dict[str, float | str]:
        p = planned.point
        return {"alpha": p.alpha, "beta": p.beta, "gamma": p.gamma}

    def pruner(self, config: StudyConfig) -> optuna.pruners.BasePruner:
        if config.search.prune and not config.halving.enabled:
            return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_PRUNER_STARTUP)
        return super().pruner(config)

    def name_parts(self, config: StudyConfig) -> list[str]:
        return [self.name, str(config.search.target), Path(config.base.name).stem, config.dataset]

    def settled(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> str | None:
        best = self.best(config, plan, records)
        if best is None:
            return None
        separation = _separation(records, best, config)
        if not separation.separated:
            return None
        return (f"the winner was separated from every other network after {separation.seeds} seeds "
                f"({separation.text(_coefficients(records))})")

    def summary(self, study: optuna.Study, config: StudyConfig, plan: Plan, records: list[TrialRecord],
                out_dir: Path, out: str | None) -> Summary:
        from scalelab.search.summary import Summary, network_results

        means = {n.first.spec.name: n for n in network_results(records)}
        multiple = plan.facts["multiple"]
        by_abg = {(r.point.alpha, r.point.beta, r.point.gamma): r for r in records if r.point}
        lines = [f"Grid for {multiple:.3g}x the base network's {si(plan.base_flops, 'multiply-adds')}: "
                 f"{len(plan.facts['candidates'])} points meet alpha*beta^2*gamma^2 = {multiple:.3g}",
                 f"{'alpha':>6} {'beta':>6} {'gamma':>6} {'predicted x':>11} {'measured x':>10}  {'status':<10} val acc"]
        for c in plan.facts["candidates"]:
            r = by_abg.get((c["alpha"], c["beta"], c["gamma"]))
            status = c["status"] if r is None or c["status"] != "train" else r.status.value
            acc = means[r.spec.name].accuracy() if r is not None and r.spec.name in means else "-"
            lines.append(f"{c['alpha']:>6g} {c['beta']:>6g} {c['gamma']:>6g} {c['predicted_ratio']:>11.3f} "
                         f"{c['measured_ratio']:>10.3f}  {status:<10} {acc}")
        statuses = [c["status"] for c in plan.facts["candidates"]]
        stopped = sum(r.status not in (Status.COMPLETE, Status.FAILED, Status.PAUSED) for r in records)
        done = [r for r in records if r.finished]
        saved = dict(off_target=statuses.count("off-target"), duplicates=statuses.count("duplicate"),
                     stopped_early=stopped)
        lines.append(f"Trials saved: {saved['off_target']} off-target after rounding (never trained), "
                     f"{saved['duplicates']} duplicates (same network as another point), {stopped} stopped early "
                     f"(pruned or diverged); {len(done)} trained to the end")
        data: dict[str, Any] = {"study": study.study_name, "saved": saved}
        settled = not_needed_line(study, config)
        if settled is not None:
            lines.append(settled[0])
            saved["not_needed"] = settled[1]
        ended = {r.number for r in records if r.status not in (Status.FAILED, Status.PAUSED)}
        if len(ended) < len(plan.networks):
            lines.append(f"{len(plan.networks) - len(ended)} of {len(plan.networks)} grid networks not finished; "
                         "re-run to resume")
        best = self.best(config, plan, records)
        if best is None:
            return Summary(lines, data)
        p = best.point
        data.update(alpha=p.alpha, beta=p.beta, gamma=p.gamma, val_acc=means[best.spec.name].mean,
                    measured_ratio=p.measured_ratio, predicted_ratio=p.predicted_ratio, flops=best.cost.flops,
                    aliases=[{"alpha": a.alpha, "beta": a.beta, "gamma": a.gamma} for a in p.aliases],
                    multiple=multiple, trial=best.number, dataset=best.dataset, base_spec=plan.base.to_dict())
        path = Path(out) if out else out_dir / "coefficients.json"
        also = "".join(f" (also alpha={a.alpha:g}, beta={a.beta:g}, gamma={a.gamma:g})" for a in p.aliases)
        separation = _separation(records, best, config)
        data["separation"] = dataclasses.asdict(separation)
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")
        lines += [f"Best: alpha={p.alpha:g}, beta={p.beta:g}, gamma={p.gamma:g}{also}: val acc "
                  f"{means[best.spec.name].accuracy()}, measured FLOPs ratio {p.measured_ratio:.3f}x "
                  f"(predicted {p.predicted_ratio:.3f}x)", separation.text(_coefficients(records)),
                  f"Saved {path}"]
        return Summary(lines, data, [path])


def _separation(records: list[TrialRecord], best: TrialRecord, config: StudyConfig) -> Separation:
    """The best grid network against every other trained one, replicate by replicate. With
    ``settle_after``, the question is asked after each seed from then on: each look is at ``1 - (1 -
    SEPARATION_LEVEL) / looks`` (Bonferroni over the looks), so that stopping at the first separation
    does not raise the chance of a false one."""
    from scalelab.search.summary import separation

    return separation(records, best, config.judged_at(SEPARATION_LEVEL))


def _coefficients(records: list[TrialRecord]) -> dict[str, str]:
    """Network name -> 'alpha=1, beta=1.1, gamma=1.3', as the grid names its points."""
    return {r.spec.name: f"alpha={r.point.alpha:g}, beta={r.point.beta:g}, gamma={r.point.gamma:g}"
            for r in records if r.point is not None}
