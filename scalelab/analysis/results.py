"""The tidy results table, rebuilt from an Optuna storage alone: one row per finished (COMPLETE) trial.

Columns (NaN or None where not applicable): ``study``, ``kind``, ``trial`` (number), ``dimension``, ``d``/``w``/``r``
(depth, width, resolution multipliers), ``alpha``/``beta``/``gamma``/``phi``, ``model`` (spec name),
``params``, ``flops`` (multiply-adds per image), ``latency_ms``, ``val_acc``, ``test_acc``, ``epochs``
(trained), ``wall_s``, ``images_per_s`` (training throughput), ``device``, ``dataset``, ``resolution``
(px), ``curve`` (list of per-epoch dicts) and ``spec`` (dict).
"""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from scalelab.search.storage import open_storage, storage_url
from scalelab.search.study import load

COLUMNS = ("study", "kind", "trial", "dimension", "d", "w", "r", "alpha", "beta", "gamma", "phi", "model",
           "params", "flops", "latency_ms", "val_acc", "test_acc", "epochs", "wall_s", "images_per_s", "device",
           "dataset", "resolution", "curve", "spec")
NUMERIC = ("d", "w", "r", "alpha", "beta", "gamma", "phi", "params", "flops", "latency_ms", "val_acc", "test_acc",
           "epochs", "wall_s", "images_per_s", "resolution")
_FROM_ATTRS = {"d": "depth", "w": "width", "r": "resolution"}


def results_table(storage: str | BaseStorage, study_name: str | None = None) -> pd.DataFrame:
    """Every COMPLETE trial of ``study_name`` (or of every study in ``storage``), as rows.

    ``storage`` is a storage object, a SQLAlchemy URL or a SQLite file path; a missing file or study
    raises :class:`~scalelab.errors.SearchError`.
    """
    storage = _open(storage)
    if study_name is not None:
        studies = [load(storage, study_name)]
    else:
        studies = [optuna.load_study(study_name=s.study_name, storage=storage) for s in storage.get_all_studies()]
    rows = [_row(study, t) for study in studies
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in NUMERIC:  # None -> NaN, so the columns are numeric even where a kind leaves them empty
        table[column] = pd.to_numeric(table[column])
    return table


def _row(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    a = trial.user_attrs
    spec = a.get("spec") or {}
    row = {c: a.get(_FROM_ATTRS.get(c, c)) for c in COLUMNS}
    row.update(study=study.study_name, kind=a.get("kind", study.user_attrs.get("kind")), trial=trial.number,
               model=spec.get("name"), resolution=spec.get("resolution"), curve=a.get("curve", []), spec=spec)
    return row


def search_rewards(storage: str | BaseStorage) -> dict[str, tuple[float, float]]:
    """(T in multiply-adds, w) of every baseline search in ``storage`` whose reward was on FLOPs."""
    storage = _open(storage)
    out = {}
    for summary in storage.get_all_studies():
        attrs = summary.user_attrs
        search = attrs.get("settings", {}).get("search", {})
        resolved = attrs.get("resolved", {})
        if attrs.get("kind") == "baseline" and resolved.get("cost_unit") == "multiply-adds":
            out[summary.study_name] = (float(resolved["target"]), float(search.get("w", -0.07)))
    return out


def _open(storage: str | BaseStorage) -> BaseStorage:
    """An existing storage from a URL or SQLite path (never creates one), or the storage given."""
    return open_storage(storage_url(storage), create=False) if isinstance(storage, str) else storage
