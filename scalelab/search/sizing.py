"""Seeds sized to a study's budget (``--fill-budget`` with ``--budget``): the most replicates of every
network whose trials all fit the budget (:func:`~scalelab.search.budget.seeds_within`), from what trials
of this study took on this machine or, before any finished, from a short measured throughput (as
``scalelab plan`` measures it).

Sized when the command creates or resumes the study, so raising the budget on resume adds seeds, and
workers that join later train the replicates it queued. Under ``--halving`` each trial is costed at the
share of full training halving is expected to leave (:meth:`~scalelab.search.halving.HalvingSettings.
expected_share`); that is an expectation, so the budget check of the workers stays the limit.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from statistics import fmean

import optuna
import torch

from scalelab.search.budget import MAX_SEEDS, Budget, parse_budget, seeds_within, trials_within
from scalelab.search.config import StudyConfig
from scalelab.search.preview import estimate
from scalelab.search.record import read_record


def fill_budget(config: StudyConfig, study: optuna.Study | None, device: torch.device) -> tuple[StudyConfig, str]:
    """``config`` with its seeds raised to fill its budget, and one line saying how they were sized;
    ``study`` is the existing study when resuming (its finished trials give the trial times)."""
    budget = parse_budget(config.budget)
    e = estimate(config, device)
    if budget.unit == "epochs":
        costs, how = {s.name: e.share * e.epochs for s in e.specs}, f"{e.epochs:.3g} epochs per trial"
    else:
        finished = _finished_seconds(study, budget)
        costs = {name: e.share * (fmean(finished[name]) if finished.get(name) else s) for name, s in e.seconds.items()}
        known = sum(len(finished.get(s.name, ())) for s in e.specs)
        how = ((f"the mean time of this study's {known} finished trial(s) of a network, else " if known else "")
               + f"a measured throughput of {len(e.measured)} network(s), training only")
    if e.share < 1:
        how += f", times the {100 * e.share:.0f}% of full training successive halving is expected to leave"
    seeds = seeds_within(budget, list(costs.values()), config.seeds)
    fits = trials_within(budget, list(costs.values()) * seeds) == len(costs) * seeds
    told = (f"--fill-budget: {seeds} seed(s) of each of the {len(costs)} networks "
            f"{'fit' if fits else 'queued, though not all of them fit'} the budget {budget.text} "
            f"(from {how}){'; the most it fills' if seeds == MAX_SEEDS else ''}")
    return dataclasses.replace(config, seeds=seeds), told


def _finished_seconds(study: optuna.Study | None, budget: Budget) -> dict[str, list[float]]:
    """Each network's wall seconds per finished trial of ``study``, as the time budget counts them."""
    out: dict[str, list[float]] = defaultdict(list)
    for t in study.get_trials(deepcopy=False) if study is not None else []:
        record = read_record(t)
        if record is not None and record.finished and t.datetime_start and t.datetime_complete:
            out[record.spec.name].append(budget.used(t, t.datetime_complete))
    return out
