"""One-time conversion of studies written by scalelab 0.1, whose trials carried about 30 string-keyed
user attributes, to the current layout: a :class:`~scalelab.search.record.TrialRecord` per trial, the
study's :class:`~scalelab.search.kinds.Plan`, metric names and settings in today's shape.

Readers only understand the current layout (one reader, :func:`~scalelab.search.record.read_record`);
``scalelab migrate`` converts an old storage once, in place. Optuna lets no attribute of a finished trial
change, so records are inserted with SQL into Optuna's own attribute tables, in one transaction per study.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from scalelab.arch.scaling import Scale
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import cost
from scalelab.search.config import config_from_dict
from scalelab.search.kinds import Plan, Planned, get_kind
from scalelab.search.kinds.enumerated import POINT_ATTR
from scalelab.search.record import (
    RECORD_KEY,
    SCHEMA,
    Outcome,
    Point,
    Provenance,
    Status,
    TrialCost,
    TrialRecord,
    dashboard_attrs,
)
from scalelab.search.storage import open_storage
from scalelab.train import EpochRecord

_OLD_POINT_KEYS = ("dimension", "alpha", "beta", "gamma", "phi", "multiple", "predicted_ratio", "measured_ratio")
_TRAIN_PER_CLASS = {"cifar10": (10, 5000), "cifar10-3class": (3, 5000), "cifar100": (100, 500),
                    "cifar100-coarse": (20, 2500)}
"""(classes, training images per class) of the fixed datasets whose files are not bundled: enough to know
their validation split's size without reading them."""


def migrate_storage(url: str) -> list[str]:
    """Convert every old study in the storage at ``url``; returns the names converted."""
    storage = open_storage(url, create=False)
    done = []
    for summary in storage.get_all_studies():
        attrs = summary.user_attrs
        if attrs.get("schema") == SCHEMA or "settings" not in attrs:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        _migrate_study(storage, study)
        done.append(summary.study_name)
    return done


def new_settings(old: dict[str, Any]) -> dict[str, Any]:
    """0.1 settings in today's shape: the ``model`` table is ``base``, its ``resolution`` ``resolution_px``."""
    new = {k: v for k, v in old.items() if k != "model"}
    model = dict(old.get("model", {}))
    if "resolution" in model:
        model["resolution_px"] = model.pop("resolution")
    new["base"] = model
    return new


def _migrate_study(storage: RDBStorage, study: optuna.Study) -> None:
    attrs = study.user_attrs
    kind = get_kind(attrs["kind"])
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = study.get_trials(deepcopy=False)
    by_point = {t.params.get("point"): t for t in trials if "point" in t.params and "params" in t.user_attrs}
    networks = []
    for i, entry in enumerate(attrs.get("plan", [])):
        spec = NetworkSpec.from_dict(entry["spec"])
        trained = by_point.get(i)
        price = (TrialCost(trained.user_attrs["params"], trained.user_attrs["flops"]) if trained is not None
                 else TrialCost(cost(spec).params, cost(spec).flops))
        compared = "models" in attrs["settings"]["search"]  # comparisons name their models
        networks.append(Planned(spec, _point({**entry["attrs"], "model": spec.name if compared else None}), price))
    base = attrs.get("baseline_spec")
    plan = Plan(NetworkSpec.from_dict(base) if base else None, attrs.get("baseline_flops"), tuple(networks),
                dict(attrs.get("resolved", {})))
    settings = new_settings(attrs["settings"])
    val_images = _val_images(settings, [t.user_attrs.get("val_acc") for t in trials])
    rows = []
    for t in trials:
        record = _record(study.study_name, t, settings, val_images)
        if record is None:
            continue
        user = {**dashboard_attrs(record), **({POINT_ATTR: t.params["point"]} if "point" in t.params else {})}
        rows.append((storage.get_trial_id_from_study_id_trial_number(study_id, t.number), record, user))
    with storage.engine.begin() as connection:
        for trial_id, record, user in rows:
            connection.execute(sqlalchemy.text(
                "INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES (:t, :k, :v)"),
                dict(t=trial_id, k=RECORD_KEY, v=json.dumps(json.dumps(record.to_dict()))))
            connection.execute(sqlalchemy.text("DELETE FROM trial_user_attributes WHERE trial_id = :t"),
                               dict(t=trial_id))
            for key, value in user.items():
                connection.execute(sqlalchemy.text(
                    "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (:t, :k, :v)"),
                    dict(t=trial_id, k=key, v=json.dumps(value)))
        connection.execute(sqlalchemy.text(
            "DELETE FROM study_user_attributes WHERE study_id = :s AND key IN "
            "('kind', 'dataset', 'baseline_spec', 'baseline_flops', 'resolved', 'pareto_front')"), dict(s=study_id))
    config = config_from_dict(settings)
    with warnings.catch_warnings():  # metric names are flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(kind.metric_names(config))
    study.set_user_attr("plan", plan.to_dict())
    study.set_user_attr("settings", config.to_dict())
    study.set_user_attr("schema", SCHEMA)


def _point(a: dict[str, Any]) -> Point:
    scale = Scale(*(a.get(k) if a.get(k) is not None else 1.0 for k in ("depth", "width", "resolution")))
    aliases = tuple(_point({**a, **alias, "aliases": []}) for alias in a.get("aliases") or ())
    return Point(scale=scale, aliases=aliases, model=a.get("model"), **{k: a.get(k) for k in _OLD_POINT_KEYS})


def _val_images(settings: dict[str, Any], accuracies: list[float | None]) -> int | None:
    """The size of the study's validation split (0.1 did not record it), where it follows cheaply from the
    settings: ``val_fraction`` of each class, rounded as :func:`~scalelab.data.split_validation` does, of a
    fixed dataset's known class sizes (or of the bundled cifar10-mini); confirmed by every recorded
    accuracy being a whole number of those images. None otherwise (image folders, a mismatch): the
    record then leaves at_chance unknown rather than guess."""
    dataset, fraction = settings.get("dataset", "cifar10-mini"), settings.get("val_fraction", 0.1)
    if dataset in _TRAIN_PER_CLASS:
        classes, per_class = _TRAIN_PER_CLASS[dataset]
        counts = [per_class] * classes
    elif dataset == "cifar10-mini":
        from scalelab.data.mini import load_cifar10_mini

        counts = [int(n) for n in np.bincount(load_cifar10_mini().y_train)]
    else:
        return None
    n = sum(round(c * fraction) for c in counts)
    known = [a for a in accuracies if isinstance(a, (int, float)) and math.isfinite(a)]
    if not n or any(abs(a * n - round(a * n)) > 1e-6 * n for a in known):
        return None
    return n


def _record(study: str, t: FrozenTrial, settings: dict[str, Any], val_images: int | None) -> TrialRecord | None:
    a = t.user_attrs
    if "spec" not in a or t.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        return None
    reason = a.get("reason")
    if t.state == TrialState.COMPLETE:
        status = Status.COMPLETE
    elif t.state == TrialState.FAIL:
        status = Status.FAILED
    elif reason and reason.startswith("over --max"):
        status = Status.OVER_CAP
    else:
        status = Status.DIVERGED if reason and "diverged" in reason else Status.PRUNED
    enumerated = "point" in t.params
    return TrialRecord(
        study=study, number=t.number, kind=a.get("kind", settings["kind"]), dataset=a.get("dataset", settings["dataset"]),
        spec=NetworkSpec.from_dict(a["spec"]),
        cost=TrialCost(a.get("params", 0), a.get("flops", 0), a.get("latency_ms"), a.get("train_memory_bytes")),
        status=status,
        provenance=Provenance(scalelab="0.1.0", torch=None, host=None, device=a.get("device", "unknown"),
                              threads=None, seed=settings.get("train", {}).get("seed", 0)),
        point=_point(a) if enumerated else None,
        curve=tuple(EpochRecord(**e) for e in a.get("curve", [])),
        outcome=Outcome(val_acc=a.get("val_acc"), test_acc=a.get("test_acc"), images_per_s=a.get("images_per_s"),
                        epochs=a.get("epochs") or 0.0, wall_s=a.get("wall_s") or 0.0,
                        val_images=val_images if a.get("val_acc") is not None else None),
        reason=reason)
