"""What a finished study says, rebuilt from its trial records: each kind writes its own summary (see
:meth:`StudyKind.summary`); the tables several kinds share are here."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from scalelab.analysis.replicates import mean_intervals
from scalelab.analysis.separation import Separation, separate_best
from scalelab.files import confined
from scalelab.search.config import RunOptions, StudyConfig
from scalelab.search.record import CONVERGED_GAIN, TrialRecord, study_records
from scalelab.search.study import read_plan


@dataclass
class Summary:
    """``lines`` to print, ``data`` for programs (``--json``), ``files`` written."""

    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines)


def summarise(study: optuna.Study, config: StudyConfig, options: RunOptions) -> Summary:
    """The kind's summary and what limits it (networks at chance, not converged); result files go under
    ``<run_dir>/<study>/`` unless ``options.out``."""
    out_dir = confined(options.run_dir, study.study_name)
    records, plan = study_records(study), read_plan(study)
    summary = config.study_kind.summary(study, config, plan, records, out_dir, options.out)
    if config.halving.enabled:
        from scalelab.search.halving import summary_lines

        lines, summary.data["halving"] = summary_lines(study, records)
        summary.lines += lines
    if config.budget is not None:
        from scalelab.search.budget import parse_budget, summary_line

        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))
        left = config.study_kind.total(config, plan) - finished
        summary.lines.append(summary_line(study, parse_budget(config.budget), left))
    results = network_results(records)
    notes = caveats(records, config, results)
    check = _budget_check(study.study_name, results, config, out_dir)
    if check is not None:
        notes.append(check)
    summary.lines += notes
    summary.data["caveats"] = notes
    return summary


def _budget_check(study_name: str, results: list[NetworkResult], config: StudyConfig, out_dir: Path) -> str | None:
    """Where networks were still rising, write the study file that trains the two most accurate again at
    twice the budget (:mod:`scalelab.search.budget_check`) and say how to run it."""
    if not config.study_kind.replicable or not any(n.first.converged is False for n in results):
        return None
    from scalelab.search.budget_check import write_budget_check

    checked = config.study_kind.budget_check_networks(results)
    path = write_budget_check(study_name, config, checked, out_dir)
    names = " and ".join(n.first.spec.name for n in checked)
    return (f"Budget check: `scalelab run {path}` trains {names} again with twice this training budget, the "
            f"same data, split, recipe and {config.seeds} seed(s): whether their order holds and how much "
            "accuracy is left.")


def caveats(records: list[TrialRecord], config: StudyConfig, results: list[NetworkResult] | None = None) -> list[str]:
    """What a reader must know before trusting the study: networks within noise of chance (all of them:
    no best network, and which budget to raise) and networks still improving when their budget ran out.
    ``results`` are the :func:`network_results` of ``records`` where the caller has them."""
    results = network_results(records) if results is None else results
    if not results:
        return []
    lines = []
    chance = [n for n in results if all(r.at_chance for r in _replicates(records, n))]
    budget = f"--epochs (now {config.train.epochs:g} per trial)" + (
        f" and --max-images (now {config.train.max_images:,})" if config.train.max_images else "") + (
        f" and --max-seconds (now {config.train.max_seconds:g} s: on a busy machine fewer images fit)"
        if config.train.max_seconds else "")
    if len(chance) == len(results):
        r = results[0].first
        lines.append(f"Warning: all {len(results)} networks trained are within noise of chance ({r.chance:.1%} for "
                     f"{r.spec.num_classes} classes): no network is best and no difference between them means "
                     f"anything. Raise the training budget: {budget}.")
    elif chance:
        lines.append(f"Warning: {len(chance)} of {len(results)} networks are within noise of chance "
                     f"({', '.join(n.first.spec.name for n in chance[:4])}{', ...' if len(chance) > 4 else ''}); "
                     "`scalelab results` marks them (at_chance).")
    rising = [n for n in results if n.first.converged is False]
    unknown = [n for n in results if n.first.converged is None]
    gained = (f"{len(rising)} of {len(results)} networks still gained more than {100 * CONVERGED_GAIN:g} points of "
              "validation accuracy in their last epoch")
    if rising and config.train.schedule == "constant":
        lines.append(f"Not converged: {gained}; their accuracy is not what they would reach. Raise "
                     f"{budget.split(' (')[0]} to compare converged networks.")
    elif rising:
        lines.append(f"Convergence not measured: {gained}, but the {config.train.schedule} schedule decays the "
                     "learning rate to zero over the last epochs, which gains accuracy however far from converged "
                     "a network is: their accuracies are what this budget reaches, not what they would converge to.")
    if unknown:
        lines.append(f"Convergence not measured for {len(unknown)} of {len(results)} networks (one evaluation "
                     "each); train for two or more epochs to see whether they had levelled off.")
    return lines


def _replicates(records: list[TrialRecord], n: NetworkResult) -> list[TrialRecord]:
    return [r for r in records if r.finished and r.spec.name == n.first.spec.name]


def states(records: list[TrialRecord]) -> str:
    """'5 complete, 2 pruned' over the recorded trials."""
    counts = Counter(r.status.value for r in records)
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trial recorded"


@dataclass(frozen=True)
class NetworkResult:
    """A network's complete replicates: ``first`` (its first trial), their count, mean validation
    accuracy and the 95% t interval of the mean from the pooled seed spread (None with one replicate)."""

    first: TrialRecord
    n: int
    mean: float
    interval: tuple[float, float] | None
    test_mean: float | None = None
    """Mean test accuracy over the replicates that evaluated the test split (None where none did)."""

    def accuracy(self) -> str:
        """'61.20%' or '61.20% (57.9 to 64.5%, 3 seeds)'."""
        if self.interval is None:
            return f"{self.mean:.2%}"
        lo, hi = self.interval
        return f"{self.mean:.2%} ({100 * lo:.1f} to {100 * hi:.1f}%, {self.n} seeds)"


def network_results(records: list[TrialRecord], level: float = 0.95) -> list[NetworkResult]:
    """One result per network (by spec name), over its complete replicates, in first-trial order; the
    intervals from the seed spread pooled over the networks (:mod:`scalelab.analysis.replicates`)."""
    groups: dict[str, list[TrialRecord]] = {}
    for r in records:
        if r.finished:
            groups.setdefault(r.spec.name, []).append(r)
    accuracy = [[r.outcome.val_acc for r in group] for group in groups.values()]
    out = []
    for group, acc, interval in zip(groups.values(), accuracy, mean_intervals(accuracy, level)):
        test = [r.outcome.test_acc for r in group if r.outcome.test_acc is not None]
        out.append(NetworkResult(group[0], len(acc), float(np.mean(acc)), interval,
                                 float(np.mean(test)) if test else None))
    return out


def separation(records: list[TrialRecord], best: TrialRecord, level: float) -> Separation:
    """The best network against every other finished one, replicate by replicate, on validation accuracy."""
    accuracy: dict[str, dict[int, float]] = {}
    for r in records:
        if r.finished:
            accuracy.setdefault(r.spec.name, {})[r.replicate] = r.outcome.val_acc
    return separate_best(accuracy, best.spec.name, level=level)


def network_table(study: optuna.Study, records: list[TrialRecord], best: TrialRecord | None) -> Summary:
    """Every finished network of a family or sweep, by dimension and FLOPs (means over replicates)."""
    done = sorted(network_results(records), key=lambda n: (str(n.first.point.dimension), n.first.cost.flops))
    lines = [f"Study {study.study_name}: {states(records)}",
             f"{'trial':>5}  {'model':<36} {'dimension':<10} {'K':>6} {'d':>6} {'w':>6} {'r':>6} {'px':>4} "
             f"{'FLOPs (multiply-adds)':>22}  val acc"]
    for n in done:
        r, p = n.first, n.first.point
        mults = " ".join(_num(v, ">6.3f") for v in (p.multiple, *p.scale))
        lines.append(f"{r.number:>5}  {r.spec.name:<36} {p.dimension or 'base':<10} {mults} "
                     f"{r.spec.resolution:>4} {r.cost.flops:>22,}  {n.accuracy()}")
    lines.append("K: planned FLOPs multiple of the base network; d, w, r: depth, width and resolution multipliers; "
                 "px: input size in pixels; val acc: mean over seeds with its 95% interval.")
    if best is not None:
        lines.append(f"Most accurate: {best.spec.name} (trial {best.number})")
    return Summary(lines, {"networks": [_network(n) for n in done], "best": brief(best) if best else None})


def comparison_table(study: optuna.Study, records: list[TrialRecord], best: TrialRecord | None,
                     level: float) -> Summary:
    """Table 2: the models, most accurate first, with their cost, speed and accuracy (means over seeds),
    and whether the most accurate is separated from the rest at ``level``."""
    done = sorted(network_results(records), key=lambda n: (-n.mean, n.first.cost.flops, n.first.number))
    lines = [f"Study {study.study_name}: {states(records)}",
             f"{'trial':>5}  {'model':<28} {'px':>4} {'parameters':>12} {'FLOPs (multiply-adds)':>22} "
             f"{'latency (ms)':>12} {'train images/s':>14} {'epochs':>6} {'test acc':>8}  val acc"]
    for n in done:
        r, o = n.first, n.first.outcome
        speed = f"{_num(r.cost.latency_ms, '>12.2f')} {_num(o.images_per_s, '>14,.0f')}"
        lines.append(f"{r.number:>5}  {r.spec.name:<28} {r.spec.resolution:>4} {r.cost.params:>12,} "
                     f"{r.cost.flops:>22,} {speed} {_num(o.epochs, '>6.2f')} {_num(n.test_mean, '>8.2%')}  "
                     f"{n.accuracy()}")
    lines.append("Latency: one image (batch 1), median after warm-up; FLOPs per image at the input size (px); "
                 "test acc: mean over seeds; val acc: mean over seeds with its 95% interval; the other columns "
                 "are the first seed's.")
    data: dict[str, Any] = {"networks": [_network(n) for n in done], "best": brief(best) if best else None}
    if best is not None:
        verdict = separation(records, best, level)
        lines.append(verdict.text())
        data["separation"] = asdict(verdict)
    return Summary(lines, data)


def brief(r: TrialRecord) -> dict[str, Any]:
    """The fields of a record that ``--json`` and the result files carry."""
    return {"trial": r.number, "model": r.spec.name, "status": r.status.value, "val_acc": r.outcome.val_acc,
            "test_acc": r.outcome.test_acc, "params": r.cost.params, "flops": r.cost.flops,
            "latency_ms": r.cost.latency_ms, "point": r.point.to_dict() if r.point else None}


def _network(n: NetworkResult) -> dict[str, Any]:
    return {**brief(n.first), "replicates": n.n, "val_acc_mean": n.mean,
            "val_acc_interval": list(n.interval) if n.interval else None, "test_acc_mean": n.test_mean}


def _num(value: float | None, fmt: str) -> str:
    """``value`` in ``fmt``, or a dash aligned to the same width."""
    return format(value, fmt) if value is not None else format("-", re.match(r"[<>^]?\d*", fmt).group(0))
