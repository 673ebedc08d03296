"""Optuna studies as scalelab keeps them: created once with everything a worker needs, resumed only
with the same settings, and (for enumerated kinds) a queue holding one trial per planned network.

Study user attributes: ``settings`` (``StudyConfig.to_dict()``, written last: a study without it was
interrupted while being created), ``plan`` (``Plan.to_dict()``) and ``schema`` (the record version,
:data:`scalelab.search.record.SCHEMA`). Metric names are set on every study.
"""

from __future__ import annotations

import sys
import time
import warnings

import optuna
import torch
from optuna.distributions import CategoricalDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from scalelab.data import load_dataset
from scalelab.errors import SearchError
from scalelab.search.config import StudyConfig, config_from_dict
from scalelab.search.kinds import Plan
from scalelab.search.kinds.enumerated import POINT_ATTR, REPLICATE_ATTR, dedupe, distributions
from scalelab.search.record import SCHEMA
from scalelab.search.storage import display_url
from scalelab.units import si

LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
"""States that account for a point: done, or about to be."""


def create_or_resume(storage: RDBStorage, name: str, config: StudyConfig, device: torch.device) -> optuna.Study:
    """The study ``name``: resumed if it exists with the same settings (or with its kind's growable lists
    extended: the new networks are planned and queued), else planned and created.

    Bad settings, and a clash with an existing study's settings, raise :class:`SearchError` before
    anything is written.
    """
    existing = {s.study_name: s for s in storage.get_all_studies()}
    if name in existing and "settings" not in existing[name].user_attrs:
        settings = _settings_when_written(storage, name, CREATION_WAIT_S)  # another command may be creating it
        if settings is None and not _has_trials(storage, name):
            optuna.delete_study(study_name=name, storage=storage)  # interrupted while being created
            del existing[name]
        elif settings is not None:
            existing[name] = next(s for s in storage.get_all_studies() if s.study_name == name)
    if name in existing:
        grows = _check_same(name, existing[name].user_attrs, config, storage)
        study = optuna.load_study(study_name=name, storage=storage)
        if grows:
            _grow(study, config, device)
        else:
            study.set_user_attr("settings", config.to_dict())  # the trial count or heartbeat may change
    else:
        kind = config.study_kind
        classes = load_dataset(config.dataset, config.data_dir).classes
        plan = kind.plan(config, len(classes), device)
        try:
            study = optuna.create_study(storage=storage, study_name=name, directions=kind.directions(config))
        except optuna.exceptions.DuplicatedStudyError:  # another command created it a moment ago
            return _resume_when_created(storage, name, config, device)
        with warnings.catch_warnings():  # metric names are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(kind.metric_names(config))
        study.set_user_attr("schema", SCHEMA)
        study.set_user_attr("plan", plan.to_dict())
        study.set_user_attr("settings", config.to_dict())
    ensure_queued(study, config)
    return study


CREATION_WAIT_S = 10.0
"""How long a command waits for another one creating the same study to write its settings (written a
moment after the study: planning happens before), before it takes the creation as interrupted."""


def _resume_when_created(storage: RDBStorage, name: str, config: StudyConfig,
                         device: torch.device) -> optuna.Study:
    attrs = _settings_when_written(storage, name, CREATION_WAIT_S)
    if attrs is None:
        raise SearchError(f"study '{name}' is being created by another command that has not finished in "
                          f"{CREATION_WAIT_S:.0f} s; if that command died, re-run this one")
    grows = _check_same(name, attrs, config, storage)
    study = optuna.load_study(study_name=name, storage=storage)
    if grows:
        _grow(study, config, device)
    ensure_queued(study, config)
    return study


def _grow(study: optuna.Study, config: StudyConfig, device: torch.device) -> None:
    """Append to the stored plan the networks that ``config`` plans and it lacks, then store ``config``.
    Planned networks keep their index (their trials point at it); a new point that rounds to a planned network
    joins its aliases; the stored facts stay (the parameter choices the trials were recorded with). The plan
    is written before the settings, so a command killed in between grows nothing twice. Growable kinds plan
    from a base network, whose class count the stored plan holds (no need to load the dataset)."""
    stored = read_plan(study)
    wanted = config.study_kind.plan(config, stored.base.num_classes, device)
    grown = Plan(stored.base, stored.base_flops, dedupe([*stored.networks, *wanted.networks]), stored.facts)
    before, after = distributions(config.study_kind, stored), distributions(config.study_kind, grown)
    for key, dist in before.items():
        if isinstance(dist, CategoricalDistribution) and dist != after[key]:
            raise SearchError(f"study '{study.study_name}' records its {key} as one of {', '.join(dist.choices)} "
                              "(it was made before studies could grow in that), so it cannot add networks of "
                              f"another {key}; add networks of those, or choose a new --study name")
    study.set_user_attr("plan", grown.to_dict())
    added = grown.networks[len(stored.networks):]
    said = ", ".join(f"{n.spec.name} ({si(n.cost.flops, 'multiply-adds')})" for n in added) or "none new"
    study.set_user_attr("settings", config.to_dict())
    print(f"[{study.study_name}] grown: {len(added)} network(s) added to the plan ({said}); the "
          f"{len(stored.networks)} planned before keep their trials", file=sys.stderr, flush=True)


def _settings_when_written(storage: RDBStorage, name: str, wait_s: float) -> dict | None:
    """The study's user attributes once its settings are there (they are written last), or None if they
    do not appear within ``wait_s`` seconds (its creation was interrupted)."""
    deadline = time.monotonic() + wait_s
    while True:
        attrs = next(s for s in storage.get_all_studies() if s.study_name == name).user_attrs
        if "settings" in attrs:
            return attrs
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def ensure_queued(study: optuna.Study, config: StudyConfig) -> int:
    """Queue every replicate of every planned network that no trial accounts for (never queued, or whose
    trials all failed and ran out of retries), with the network's real parameters; returns how many
    were queued. Resuming with more ``seeds`` queues the new replicates and keeps the finished ones.

    Called by the process that owns the study, not by every worker: two workers doing it at once could
    both queue the same point.
    """
    params = config.study_kind.queue(config, read_plan(study))
    covered = {(point_of(t), replicate_of(t)) for t in study.get_trials(deepcopy=False, states=LIVE)}
    missing = [(i, r) for r in range(config.seeds) for i in range(len(params)) if (i, r) not in covered]
    for i, r in missing:
        study.enqueue_trial(params[i], user_attrs={POINT_ATTR: i, REPLICATE_ATTR: r}, skip_if_exists=False)
    return len(missing)


def point_of(trial: FrozenTrial) -> int | None:
    """The plan index of the network a trial trains (None for baseline-search trials)."""
    return trial.user_attrs.get(POINT_ATTR)


def replicate_of(trial: FrozenTrial) -> int:
    """Which replicate of its network a trial trains (0 for trials made before replicates existed)."""
    return trial.user_attrs.get(REPLICATE_ATTR, 0)


def load(storage: RDBStorage, name: str) -> optuna.Study:
    """An existing study; :class:`SearchError` naming the studies there if it is missing."""
    names = [s.study_name for s in storage.get_all_studies()]
    if name not in names:
        there = ", ".join(names) if names else "none"
        raise SearchError(f"no study '{name}' in {display_url(storage.url)} (studies there: {there}); "
                          "check --study and --storage")
    return optuna.load_study(study_name=name, storage=storage)


def read_config(study: optuna.Study) -> StudyConfig:
    """The settings a study was made with."""
    attrs = study.user_attrs
    if "settings" not in attrs:
        raise SearchError(f"study '{study.study_name}' was not made by scalelab, or its creation was "
                          "interrupted; re-run the command that creates it")
    if attrs.get("schema") != SCHEMA:
        raise SearchError(f"study '{study.study_name}' was made by an older scalelab; convert its storage "
                          "once with `scalelab migrate --storage FILE`")
    return config_from_dict(attrs["settings"])


def read_plan(study: optuna.Study) -> Plan:
    return Plan.from_dict(study.user_attrs["plan"])


def _has_trials(storage: RDBStorage, name: str) -> bool:
    return bool(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))


def _check_same(name: str, attrs: dict, config: StudyConfig, storage: RDBStorage) -> bool:
    """Whether ``config`` grows the stored settings (False: the same); :class:`SearchError` if it clashes."""
    if attrs.get("schema") != SCHEMA:
        raise SearchError(f"study '{name}' in {display_url(storage.url)} was made by an older scalelab; "
                          "convert it once with `scalelab migrate`, or choose a new --study name")
    stored = config_from_dict(attrs["settings"]).identity()
    wanted = config.identity()
    if stored == wanted:
        return False
    changed = _diff(stored, wanted)
    growable = {f"search.{k}" for k in config.study_kind.growable}
    if all(k in growable and isinstance(a, list) and isinstance(b, list) and set(a) <= set(b)
           for k, a, b in changed):
        return True
    diffs = [f"{k}: {a!r} -> {b!r}" for k, a, b in changed]
    may_grow = (f" (its {', '.join(config.study_kind.growable)} may be extended: they add networks)"
                if config.study_kind.growable else "")
    raise SearchError(f"study '{name}' in {display_url(storage.url)} was made with other settings "
                      f"({'; '.join(diffs[:4])}); re-run with its settings to resume it{may_grow}, or choose a "
                      "new --study name")


def _diff(a: dict, b: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append((f"{prefix}{key}", x, y))
    return out
