"""What every enumerated kind (grid, family, sweep, compare) shares: a plan that lists each network once,
a queue holding one Optuna trial per network with its real parameters (alpha, beta, gamma; dimension and
multiple; phi; model), and validation accuracy as the one objective."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from scalelab.arch.spec import NetworkSpec
from scalelab.cost_cache import cached_cost
from scalelab.errors import SearchError
from scalelab.search.kinds import Plan, Planned
from scalelab.search.record import Point, TrialCost, TrialRecord

if TYPE_CHECKING:
    from scalelab.search.config import StudyConfig
    from scalelab.search.summary import NetworkResult, Summary

POINT_ATTR = "point"
"""User attribute of a queued trial: the index of its network in the plan."""
REPLICATE_ATTR = "replicate"
"""User attribute of a queued trial: which replicate (seed) of its network it trains."""
SETTLED_ATTR = "settled"
"""Study user attribute: why the replicates past ``settle_after`` that were still queued were not trained."""
NOT_NEEDED_ATTR = "not_needed"
"""Trial user attribute, true on such a replicate (ended pruned before training, its record saying why)."""


def not_needed_line(study: optuna.Study, config: StudyConfig) -> tuple[str, int] | None:
    """Where the study was settled before its last seeds: the summary's line saying so, and how many queued
    replicates were left untrained."""
    settled = study.user_attrs.get(SETTLED_ATTR)
    if not settled:
        return None
    skipped = sum(bool(t.user_attrs.get(NOT_NEEDED_ATTR)) for t in study.get_trials(deepcopy=False))
    return (f"Seeds past the first {config.settle_after} not needed: {settled}; {skipped} queued replicate(s) "
            "not trained"), skipped


class EnumeratedKind:
    """Base of the enumerated kinds; a subclass sets the class variables and :meth:`params`, and plans."""

    name: ClassVar[str]
    title: ClassVar[str]
    settings: ClassVar[type]
    report_sections: ClassVar[tuple[str, ...]]
    enumerated: ClassVar[bool] = True
    replicable: ClassVar[bool] = True
    settles: ClassVar[bool] = False
    growable: ClassVar[tuple[str, ...]] = ()

    def params(self, planned: Planned) -> dict[str, float | str]:
        """The Optuna parameters that place ``planned`` in the study."""
        raise NotImplementedError

    def directions(self, config: StudyConfig) -> list[str]:
        return ["maximize"]

    def metric_names(self, config: StudyConfig) -> list[str]:
        return ["val_acc"]

    def pruner(self, config: StudyConfig) -> optuna.pruners.BasePruner:
        """Successive halving where the study asks for it; otherwise every curve is wanted whole."""
        if config.halving.enabled:
            from scalelab.search.halving import HalvingPruner

            return HalvingPruner(config.halving, config.train.epochs)
        return optuna.pruners.NopPruner()

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)  # never consulted: every trial is queued

    def queue(self, config: StudyConfig, plan: Plan) -> list[dict[str, Any]]:
        return [self.params(n) for n in plan.networks]

    def network(self, trial: optuna.Trial, config: StudyConfig, plan: Plan) -> tuple[NetworkSpec, Point, TrialCost]:
        index = trial.user_attrs.get(POINT_ATTR)
        if not isinstance(index, int) or not 0 <= index < len(plan.networks):
            raise SearchError(f"trial {trial.number} of an enumerated study was not queued by scalelab; "
                              "enumerated studies take no sampled trials")
        for name, dist in distributions(self, plan).items():
            if isinstance(dist, CategoricalDistribution):
                trial.suggest_categorical(name, dist.choices)
            else:
                trial.suggest_float(name, dist.low, dist.high)
        planned = plan.networks[index]
        return planned.spec, planned.point, planned.cost

    def measures_latency(self, config: StudyConfig) -> bool:
        return False

    def over_cap(self, config: StudyConfig, plan: Plan, spec: NetworkSpec, cost: TrialCost,
                 device: object) -> tuple[TrialCost, str | None]:
        return cost, None  # enumerated studies have no caps

    def values(self, config: StudyConfig, plan: Plan, accuracy: float, cost: TrialCost) -> float:
        return accuracy

    def total(self, config: StudyConfig, plan: Plan) -> int:
        return len(plan.networks) * config.seeds

    def best(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> TrialRecord | None:
        """The network with the highest mean validation accuracy over its replicates; ties go to fewer
        FLOPs, then to the earlier trial. Returns the network's first trial."""
        return best_network(records, lambda r: r.outcome.val_acc)

    def settled(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> str | None:
        return None  # every seed is trained

    def budget_check_networks(self, results: list[NetworkResult]) -> list[NetworkResult]:
        """The networks a budget check trains again: the two most accurate."""
        return sorted(results, key=lambda n: -n.mean)[:2]

    def name_parts(self, config: StudyConfig) -> list[str]:
        return [self.name, Path(config.base.name).stem, config.dataset]

    def summary(self, study: optuna.Study, config: StudyConfig, plan: Plan, records: list[TrialRecord],
                out_dir: Path, out: str | None) -> Summary:
        from scalelab.search.summary import network_table

        return network_table(study, records, self.best(config, plan, records))


def best_network(records: list[TrialRecord], score: Callable[[TrialRecord], float]) -> TrialRecord | None:
    """The first trial of the network whose replicates score highest on average (finished trials only);
    ties go to fewer FLOPs, then to the earlier trial. A network whose every replicate is at chance is
    never best: None when all are."""
    groups: dict[str, list[TrialRecord]] = {}
    for r in records:
        if r.finished:
            groups.setdefault(r.spec.name, []).append(r)
    groups = {k: g for k, g in groups.items() if not all(r.at_chance for r in g)}
    if not groups:
        return None
    ranked = max(groups.values(), key=lambda g: (sum(map(score, g)) / len(g), -g[0].cost.flops, -g[0].number))
    return ranked[0]


CHOICES = "choices"
"""Key of ``Plan.facts`` listing every value a named parameter may take, for kinds whose studies grow:
Optuna refuses a categorical parameter whose choices change within a study, so a growing study's are
fixed when it is created (plans without it list the planned names)."""


def distributions(kind: EnumeratedKind, plan: Plan) -> dict[str, BaseDistribution]:
    """One distribution per parameter, spanning the planned values (numbers) or listing them (names), so
    that Optuna's importance, slice and parallel-coordinate tools see the real search space."""
    values: dict[str, list[Any]] = {}
    for n in plan.networks:
        for key, value in kind.params(n).items():
            values.setdefault(key, []).append(value)
    out: dict[str, BaseDistribution] = {}
    for key, vals in values.items():
        if all(isinstance(v, str) for v in vals):
            out[key] = CategoricalDistribution(sorted(set(plan.facts.get(CHOICES, {}).get(key, vals))))
        else:
            out[key] = FloatDistribution(float(min(vals)), float(max(vals)))
    return out


def price(spec: NetworkSpec, point: Point) -> Planned:
    c = cached_cost(spec)
    return Planned(spec, point, TrialCost(params=c.params, flops=c.flops))


def dedupe(planned: list[Planned]) -> tuple[Planned, ...]:
    """One entry per distinct network (the spec without its name), in first-seen order; the points of
    the others (and their own aliases) go into its point's ``aliases``, each point once."""
    kept: dict[str, Planned] = {}
    for p in planned:
        key = p.spec.network_key
        if key not in kept:
            kept[key] = p
            continue
        first = kept[key]
        known = [dataclasses.replace(first.point, aliases=()), *first.point.aliases]
        for q in (dataclasses.replace(p.point, aliases=()), *p.point.aliases):
            if q not in known:
                known.append(q)
        kept[key] = Planned(first.spec, dataclasses.replace(first.point, aliases=tuple(known[1:])), first.cost)
    return tuple(kept.values())

