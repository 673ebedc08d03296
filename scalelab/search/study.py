"""Optuna studies as scalelab keeps them: created once with everything a worker needs, resumed only
with the same settings, and (for enumerated kinds) a queue holding one trial per point still to train.

Study user attributes: ``kind``, ``dataset``, ``baseline_spec`` (dict, or None for compare),
``baseline_flops``, ``resolved`` (absolute targets and caps; a grid's candidates), ``plan`` (the points
of an enumerated study), ``settings`` (``StudyConfig.to_dict()``, written last: a study without it was
interrupted while being created) and, after a Pareto search, ``pareto_front`` (trial numbers).
"""

from __future__ import annotations

import numpy as np
import optuna
import torch
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from scalelab.data import load_dataset
from scalelab.errors import SearchError
from scalelab.search.config import StudyConfig, config_from_dict
from scalelab.search.plans import make_plan
from scalelab.search.storage import display_url

LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
"""States that account for a point: done, or about to be."""
MEDIAN_PRUNER_STARTUP = 4  # finished trials before the median pruner starts judging


def directions(config: StudyConfig) -> list[str]:
    if config.kind == "baseline" and config.search.objective == "pareto":
        return ["maximize", "minimize"]  # accuracy, cost
    return ["maximize"]  # reward (baseline search) or validation accuracy


def create_or_resume(storage: RDBStorage, name: str, config: StudyConfig, device: torch.device) -> optuna.Study:
    """The study ``name``: resumed if it exists with the same settings, else planned and created.

    Bad settings, and a clash with an existing study's settings, raise :class:`SearchError` before
    anything is written.
    """
    existing = {s.study_name: s for s in storage.get_all_studies()}
    if name in existing and "settings" not in existing[name].user_attrs and not _has_trials(storage, name):
        optuna.delete_study(study_name=name, storage=storage)  # interrupted while being created
        del existing[name]
    if name in existing:
        _check_same(name, existing[name].user_attrs, config, storage)
        study = optuna.load_study(study_name=name, storage=storage)
        study.set_user_attr("settings", config.to_dict())  # the trial count or heartbeat may change
    else:
        classes = load_dataset(config.dataset, config.data_dir).classes
        plan = make_plan(config, len(classes), device)
        study = optuna.create_study(storage=storage, study_name=name, directions=directions(config))
        for key, value in dict(kind=config.kind, dataset=config.dataset,
                               baseline_spec=plan.baseline.to_dict() if plan.baseline else None,
                               baseline_flops=plan.baseline_flops, resolved=plan.resolved,
                               plan=[p.to_dict() for p in plan.points], settings=config.to_dict()).items():
            study.set_user_attr(key, value)
    ensure_queued(study)
    return study


def ensure_queued(study: optuna.Study) -> int:
    """Queue every planned point that no trial accounts for (never planned, or whose trials all failed
    and ran out of retries); returns how many were queued.

    Called by the process that owns the study, not by every worker: two workers doing it at once could
    both queue the same point.
    """
    plan = study.user_attrs.get("plan", [])
    covered = {point_of(t) for t in study.get_trials(deepcopy=False, states=LIVE)}
    missing = [i for i in range(len(plan)) if i not in covered]
    for i in missing:
        study.enqueue_trial({"point": i})
    return len(missing)


def point_of(trial: FrozenTrial) -> int | None:
    """The plan index a trial trains (None for baseline-search trials)."""
    return trial.system_attrs.get("fixed_params", {}).get("point", trial.params.get("point"))


def load(storage: RDBStorage, name: str) -> optuna.Study:
    """An existing study; :class:`SearchError` naming the studies there if it is missing."""
    names = [s.study_name for s in storage.get_all_studies()]
    if name not in names:
        there = ", ".join(names) if names else "none"
        raise SearchError(f"no study '{name}' in {display_url(storage.url)} (studies there: {there}); "
                          "check --study and --storage")
    return optuna.load_study(study_name=name, storage=storage)


def read_config(study: optuna.Study) -> StudyConfig:
    if "settings" not in study.user_attrs:
        raise SearchError(f"study '{study.study_name}' was not made by scalelab, or its creation was "
                          "interrupted; re-run the command that creates it")
    return config_from_dict(study.user_attrs["settings"])


def sampler_for(config: StudyConfig, worker: int, n_trials: int) -> optuna.samplers.BaseSampler:
    """TPE for the baseline search; enumerated kinds only take queued trials, so any sampler does.

    The seed mixes in the worker index and the trials already made, so parallel workers and resumed
    runs do not propose the same first networks again.
    """
    seed = int(np.random.SeedSequence([config.train.seed, worker, n_trials]).generate_state(1)[0])
    if config.kind == "baseline":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner_for(config: StudyConfig) -> optuna.pruners.BasePruner:
    """Median pruning on validation accuracy for single-objective searches (reward, grid); none for
    Pareto searches (Optuna cannot prune those) or for family, sweep and compare, whose curves matter."""
    single = config.kind == "grid" or (config.kind == "baseline" and config.search.objective == "reward")
    if single and config.search.prune:
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_PRUNER_STARTUP)
    return optuna.pruners.NopPruner()


def _has_trials(storage: RDBStorage, name: str) -> bool:
    return bool(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))


def _check_same(name: str, attrs: dict, config: StudyConfig, storage: RDBStorage) -> None:
    stored = config_from_dict(attrs["settings"]).identity()
    wanted = config.identity()
    if stored == wanted:
        return
    diffs = [f"{k}: {a!r} -> {b!r}" for k, a, b in _diff(stored, wanted)]
    raise SearchError(f"study '{name}' in {display_url(storage.url)} was made with other settings "
                      f"({'; '.join(diffs[:4])}); re-run with its settings to resume it, or choose a new "
                      "--study name")


def _diff(a: dict, b: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append((f"{prefix}{key}", x, y))
    return out
