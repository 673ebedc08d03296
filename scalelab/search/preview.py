"""A study's plan before it runs (`scalelab plan FILE.toml`): the networks it would train and their FLOPs,
the time it would take on this machine from a short measured throughput, and the smallest accuracy
difference its replicates could resolve. Nothing is written to any storage."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from scalelab.arch.spec import NetworkSpec
from scalelab.data import load_dataset, split_validation
from scalelab.search.budget import parse_budget, seeds_within, trials_within
from scalelab.search.config import StudyConfig
from scalelab.search.summary import Summary
from scalelab.train import train

SEED_SPREAD = 0.025
"""Seed-to-seed standard deviation of validation accuracy assumed when the study has no replicates yet:
2.5 points, measured on this project's short CIFAR-10 trials (four seeds of one network, README)."""
PROBE_BATCHES = 8


def preview(config: StudyConfig, device: torch.device, spread: float | None = None) -> Summary:
    """The plan of ``config``'s study with time and resolution estimates; ``spread`` is the measured
    seed-to-seed standard deviation of validation accuracy (fraction) when known."""
    kind = config.study_kind
    e = estimate(config, device)
    plan, specs, splits, images, rate, per_trial = e.plan, e.specs, e.splits, e.images, e.rate, e.seconds
    trials = kind.total(config, plan)
    seeds = config.seeds
    total_s = e.share * (sum(per_trial.values()) * seeds if plan.networks
                         else trials * sum(per_trial.values()) / len(per_trial))
    sd = spread if spread is not None else SEED_SPREAD
    detectable = (1.96 + 0.84) * sd * math.sqrt(2 / seeds)
    lines = [f"{kind.name} study: {len(plan.networks) or 'sampled'} networks x {seeds} seeds = {trials} trials of "
             f"{images:,.0f} training images each (budget: {config.train.epochs:g} epoch(s) of {len(splits.train[1]):,} "
             f"images{f', at most {config.train.max_images:,}' if config.train.max_images else ''})",
             f"{'network':<40} {'FLOPs (multiply-adds)':>22} {'px':>4} {'images/s':>9} {'s per trial':>11}"]
    for s in specs:
        c = next((n.cost.flops for n in plan.networks if n.spec.name == s.name), plan.base_flops)
        mark = "" if s.name in e.measured else " (interpolated)"
        lines.append(f"{s.name:<40} {c:>22,} {s.resolution:>4} {rate[s.name]:>9,.0f} {per_trial[s.name]:>11,.1f}{mark}")
    halving = (f"; successive halving: {100 * e.share:.0f}% of full training expected, "
               f"{e.share * e.epochs * len(plan.networks) * seeds:.3g} trial-epochs" if e.share < 1 else "")
    lines += [f"Estimated time: {_duration(total_s)} on this machine ({device}, torch threads: "
              f"{torch.get_num_threads()}, one worker; training only, from {PROBE_BATCHES} batches of each network "
              f"not marked interpolated{halving})",
              f"Smallest difference in validation accuracy two networks' means can resolve with {seeds} seed(s) each: "
              f"{100 * detectable:.1f} points (95% level, 80% power, seed-to-seed spread {100 * sd:.1f} points"
              f"{' measured in this study' if spread is not None else ', this project’s measured default'})"]
    data: dict[str, Any] = {"trials": trials, "images_per_trial": images, "estimated_s": total_s,
                            "detectable_difference": detectable, "seed_spread": sd,
                            "networks": [{"name": s.name, "images_per_s": rate[s.name]} for s in specs]}
    if config.budget is not None:
        budget = parse_budget(config.budget)
        if plan.networks:  # queued seed by seed: every network's first seed, then every second one, ...
            seconds = [e.share * per_trial[n.spec.name] for _ in range(seeds) for n in plan.networks]
        else:
            seconds = [total_s / trials] * trials
        fit = trials_within(budget, seconds if budget.unit == "s" else [e.share * e.epochs] * len(seconds))
        data["budget_trials"] = fit
        lines.append(f"Budget {budget.text}: about {fit} of the {trials} trials fit"
                     + (f" ({fit // len(plan.networks)} whole seed(s) of every network)" if plan.networks else "")
                     + ("" if fit == trials else "; the rest stay queued for a re-run with a larger budget"))
        if plan.networks and config.study_kind.replicable:
            one_seed = [e.share * c for c in (per_trial.values() if budget.unit == "s" else [e.epochs] * len(specs))]
            whole = trials_within(budget, one_seed) == len(one_seed)
            data["budget_seeds"] = most = seeds_within(budget, one_seed) if whole else 0
            lines.append(f"Seeds the budget fits (--fill-budget): {most}"
                         + ("" if whole else ": not one trial of every network"))
    return Summary(lines, data)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a study's trials would take here: its plan and networks, the training images of one trial,
    each network's training images/s (``measured`` names the ones timed) and seconds per trial, and
    ``share``, the share of that training each trial is expected to run (below 1 under ``--halving``)."""

    plan: Any
    specs: list[NetworkSpec]
    splits: Any
    images: float
    rate: dict[str, float]
    measured: frozenset[str]
    share: float

    @property
    def seconds(self) -> dict[str, float]:
        return {s.name: self.images / self.rate[s.name] for s in self.specs}

    @property
    def epochs(self) -> float:
        """Epochs of one trial (every network trains the same images)."""
        return self.images / len(self.splits.train[1])


def estimate(config: StudyConfig, device: torch.device) -> Estimate:
    """The study's plan, with the cheapest and costliest networks timed for a few batches."""
    ds = load_dataset(config.dataset, config.data_dir)
    splits = split_validation(ds, config.val_fraction, config.train.seed, config.train_fraction)
    plan = config.study_kind.plan(config, len(ds.classes), device)
    specs = [n.spec for n in plan.networks] or [plan.base]
    measured = {s.name: _throughput(s, splits, config, device) for s in _extremes(specs, plan)}
    images = config.train.image_budget(len(splits.train[1]))
    share = (config.halving.expected_share(len(plan.networks), images / len(splits.train[1]))
             if config.halving.enabled else 1.0)
    return Estimate(plan, specs, splits, images, _interpolate(specs, plan, measured), frozenset(measured), share)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _extremes(specs: list[NetworkSpec], plan) -> list[NetworkSpec]:
    """The cheapest and the costliest network (throughput of the others is interpolated in FLOPs)."""
    flops = {s.name: _flops(s, plan) for s in specs}
    ordered = sorted(specs, key=lambda s: flops[s.name])
    return [ordered[0]] if len(ordered) == 1 else [ordered[0], ordered[-1]]


def _flops(spec: NetworkSpec, plan) -> int:
    return next((n.cost.flops for n in plan.networks if n.spec.name == spec.name), plan.base_flops)


def _interpolate(specs: list[NetworkSpec], plan, measured: dict[str, float]) -> dict[str, float]:
    """Images/s of every network: measured ones as measured, others on the line through the measured
    (log FLOPs, log images/s) points."""
    points = sorted((math.log(_flops(s, plan)), math.log(measured[s.name])) for s in specs if s.name in measured)
    out = {}
    for s in specs:
        if s.name in measured:
            out[s.name] = measured[s.name]
            continue
        x = math.log(_flops(s, plan))
        (x0, y0), (x1, y1) = points[0], points[-1]
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        out[s.name] = math.exp(y0 + slope * (x - x0))
    return out


def _throughput(spec: NetworkSpec, splits, config: StudyConfig, device: torch.device) -> float:
    probe = dataclasses.replace(config.train, epochs=None, max_seconds=None,
                                max_images=PROBE_BATCHES * config.train.batch_size)
    return train(spec, splits, probe, device=device, progress=False).images_per_s
