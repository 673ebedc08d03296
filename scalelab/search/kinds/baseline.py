"""The baseline search: MnasNet-style, over the space of :mod:`scalelab.search.space` around a base
network, under the soft-constrained reward ACC(m) * (cost(m) / T)^w (single objective, pruned) or as a
Pareto search of accuracy against cost. Hard caps on FLOPs and training memory end a trial before it
trains."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
import torch

from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import measure_latency, training_memory
from scalelab.cost_cache import cached_cost
from scalelab.errors import SearchError
from scalelab.files import write_text_atomic
from scalelab.search.kinds import Plan, Values, register
from scalelab.search.kinds.enumerated import best_network
from scalelab.search.kinds.grid import MEDIAN_PRUNER_STARTUP
from scalelab.search.record import TrialCost, TrialRecord
from scalelab.search.space import suggest_spec
from scalelab.search.targets import Target, parse_target, reward
from scalelab.units import si

if TYPE_CHECKING:
    from scalelab.search.config import StudyConfig
    from scalelab.search.summary import Summary

OBJECTIVES = ("reward", "pareto")
COSTS = ("flops", "latency")


@dataclass(frozen=True)
class BaselineSettings:
    """``objective``: 'reward' (ACC x (cost/T)^w) or 'pareto' (maximise accuracy, minimise cost).
    ``cost``: 'flops' (multiply-adds) or 'latency' (ms, batch 1, training device). ``target``: T, a
    multiple of the base network's cost ('1x') or absolute ('30M' multiply-adds, '5ms'). ``w``: the
    reward exponent. Caps end a trial before training."""

    trials: int = 20
    objective: str = "reward"
    cost: str = "flops"
    target: Target = parse_target("1x", "target")
    w: float = -0.07
    max_flops: Target | None = None
    max_memory: Target | None = None
    prune: bool = True

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise SearchError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.cost not in COSTS:
            raise SearchError(f"unknown cost {self.cost!r}; choose one of {', '.join(COSTS)}")
        if self.trials < 1:
            raise SearchError(f"--trials must be at least 1, got {self.trials}")
        if self.target.unit and self.cost != "latency":
            raise SearchError(f"target '{self.target}' is a latency; use --cost latency, or a FLOPs target")
        for name, cap in (("max_flops", self.max_flops), ("max_memory", self.max_memory)):
            if cap is not None and cap.unit:
                raise SearchError(f"--{name.replace('_', '-')} takes multiply-adds or bytes, not '{cap}'")


@register
class Baseline:
    name: ClassVar[str] = "baseline"
    title: ClassVar[str] = "baseline architecture search"
    settings: ClassVar[type] = BaselineSettings
    report_sections: ClassVar[tuple[str, ...]] = ("pareto", "curves", "architecture", "models")
    enumerated: ClassVar[bool] = False
    replicable: ClassVar[bool] = False
    settles: ClassVar[bool] = False
    growable: ClassVar[tuple[str, ...]] = ()

    def plan(self, config: StudyConfig, num_classes: int, device: torch.device) -> Plan:
        """The base network, T of the reward in absolute units, and the hard caps (multiples are of the
        base network's cost)."""
        s: BaselineSettings = config.search
        base = config.base.resolve(num_classes)
        flops = cached_cost(base).flops
        latency = s.cost == "latency"
        reference = measure_latency(build(base), base.resolution, 1, device=device).median_ms if latency else flops
        facts: dict[str, Any] = {"target": s.target.amount_for(reference),
                                 "cost_unit": "ms" if latency else "multiply-adds",
                                 "max_flops": s.max_flops.amount_for(flops) if s.max_flops else None,
                                 "max_memory": None}
        if s.max_memory:
            reference = 0.0 if s.max_memory.amount is not None else training_memory(
                build(base), base.resolution, config.train.batch_size, device=device)
            facts["max_memory"] = s.max_memory.amount_for(reference)
        return Plan(base, flops, (), facts)

    def directions(self, config: StudyConfig) -> list[str]:
        return ["maximize", "minimize"] if config.search.objective == "pareto" else ["maximize"]

    def metric_names(self, config: StudyConfig) -> list[str]:
        if config.search.objective == "pareto":
            return ["val_acc", "latency_ms" if config.search.cost == "latency" else "flops"]
        return ["reward"]

    def pruner(self, config: StudyConfig) -> optuna.pruners.BasePruner:
        if config.search.objective == "reward" and config.search.prune:
            return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_PRUNER_STARTUP)
        return optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective studies

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed)

    def queue(self, config: StudyConfig, plan: Plan) -> list[dict[str, Any]]:
        return []

    def network(self, trial: optuna.Trial, config: StudyConfig, plan: Plan) -> tuple[NetworkSpec, None, None]:
        return suggest_spec(trial, plan.base), None, None

    def measures_latency(self, config: StudyConfig) -> bool:
        return config.search.cost == "latency"

    def over_cap(self, config: StudyConfig, plan: Plan, spec: NetworkSpec, c: TrialCost,
                 device: torch.device) -> tuple[TrialCost, str | None]:
        """The cost with training memory measured where capped, and why the network is over a cap (None
        when it may train)."""
        cap = plan.facts.get("max_flops")
        if cap is not None and c.flops > cap:
            return c, f"over --max-flops: {si(c.flops, 'multiply-adds')} > {si(cap, 'multiply-adds')}; not trained"
        cap = plan.facts.get("max_memory")
        if cap is None:
            return c, None
        need = training_memory(build(spec), spec.resolution, config.train.batch_size, device=device)
        c = TrialCost(c.params, c.flops, c.latency_ms, need)
        if need > cap:
            return c, f"over --max-memory: training needs {si(need, 'B')} > {si(cap, 'B')}; not trained"
        return c, None

    def values(self, config: StudyConfig, plan: Plan, accuracy: float, c: TrialCost) -> Values:
        price = c.latency_ms if config.search.cost == "latency" else float(c.flops)
        if config.search.objective == "pareto":
            return accuracy, price
        return reward(accuracy, price, plan.facts["target"], config.search.w)

    def total(self, config: StudyConfig, plan: Plan) -> int:
        return config.search.trials

    def best(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> TrialRecord | None:
        """Highest reward (Pareto searches: highest validation accuracy); ties go to fewer FLOPs, then
        to the earlier trial."""

        def score(r: TrialRecord) -> float:
            value = self.values(config, plan, r.outcome.val_acc, r.cost)
            return value[0] if isinstance(value, tuple) else value

        return best_network(records, score)

    def settled(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> str | None:
        return None  # every seed is trained

    def name_parts(self, config: StudyConfig) -> list[str]:
        return [self.name, Path(config.base.name).stem, config.dataset]

    def summary(self, study: optuna.Study, config: StudyConfig, plan: Plan, records: list[TrialRecord],
                out_dir: Path, out: str | None) -> Summary:
        from scalelab.search.summary import Summary, brief, states

        best = self.best(config, plan, records)
        if best is None and any(r.finished for r in records):
            return Summary([f"Study {study.study_name}: {states(records)}; no best network: every trained one is "
                            "at chance"], {"best": None})
        if best is None:
            raise SearchError(f"no trial of study '{study.study_name}' finished training ({states(records)}); "
                              "raise --max-flops/--max-memory, or run more --trials")
        unit = plan.facts["cost_unit"]
        path = Path(out) if out else out_dir / "best.json"
        lines = [f"Study {study.study_name}: {states(records)}"]
        data: dict[str, Any] = {}
        files = []
        if config.search.objective == "pareto":
            front = sorted(_front(records, unit), key=lambda r: _price(r, unit))
            lines += [f"Pareto front, {len(front)} networks (maximise validation accuracy, minimise {unit}):",
                      *(f"  trial {r.number:>4}: val acc {r.outcome.val_acc:.2%}, {_fmt(_price(r, unit), unit)}, "
                        f"{si(r.cost.params, 'parameters')}" for r in front)]
            data["pareto_front"] = [{**brief(r), "spec": r.spec.to_dict()} for r in front]
            pareto = path.with_name("pareto.json")
            write_text_atomic(pareto, json.dumps(data["pareto_front"], indent=2) + "\n")
            files.append(pareto)
            lines.append(f"Most accurate on the front: trial {best.number}")
        else:
            lines.append(f"Best: trial {best.number}, reward {self.values(config, plan, best.outcome.val_acc, best.cost):.4f}"
                         f" = val acc {best.outcome.val_acc:.2%} x ({_fmt(_price(best, unit), unit)} / target "
                         f"{_fmt(plan.facts['target'], unit)})^{config.search.w:g}")
        write_text_atomic(path, best.spec.to_json() + "\n")
        files.append(path)
        data["best"] = {**brief(best), "spec": best.spec.to_dict()}
        lines += ["", best.spec.format_table(), "",
                  f"Parameters: {best.cost.params:,}; FLOPs: {si(best.cost.flops, 'multiply-adds')} per image at "
                  f"{best.spec.resolution}x{best.spec.resolution} px", *(f"Saved {p}" for p in files)]
        return Summary(lines, data, files)


def _front(records: list[TrialRecord], unit: str) -> list[TrialRecord]:
    """Finished trials on the accuracy-cost Pareto front."""
    from scalelab.analysis.compare import pareto_front

    done = [r for r in records if r.finished]
    on = pareto_front([_price(r, unit) for r in done], [r.outcome.val_acc for r in done])
    return [r for r, keep in zip(done, on) if keep]


def _price(r: TrialRecord, unit: str) -> float:
    return r.cost.latency_ms if unit == "ms" else float(r.cost.flops)


def _fmt(value: float, unit: str) -> str:
    return f"{value:.2f} ms" if unit == "ms" else si(value, unit)
