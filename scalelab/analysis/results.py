"""The tidy results table, rebuilt from an Optuna storage alone: one row per recorded trial
(:class:`~scalelab.search.record.TrialRecord`), whatever its status.

Columns (NaN or None where not applicable), one meaning each:

- ``study``, ``kind``, ``trial`` (number), ``status`` (complete, pruned, diverged, over_cap, failed), ``reason``
- ``dimension`` (width, depth, resolution, compound; None for the base network and for searches)
- ``depth_mult``, ``width_mult``, ``resolution_mult``: multipliers applied to the base network
- ``alpha``, ``beta``, ``gamma``, ``phi``: compound coefficients; ``multiple``: the FLOPs multiple K the
  network was planned for; ``predicted_ratio`` (d*w^2*r^2) and ``measured_ratio`` (after rounding)
- ``model`` (spec name), ``params``, ``flops`` (multiply-adds per image), ``resolution_px`` (input size)
- ``latency_ms`` (batch 1), ``val_acc`` (validation split held out from the training data), ``test_acc``,
  ``epochs`` (trained), ``wall_s``, ``images_per_s`` (training throughput), ``val_images`` (validation
  split size), ``train_s`` (seconds in training), ``overhead_s`` (the worker's seconds for the trial
  outside training: start-up, data loading, planning, costing, writing) and ``overhead_fraction`` (the
  share of the two that is overhead), ``at_chance`` (within noise of guessing), ``converged`` (False: still gaining more than
  half a point per epoch at the end; None: one evaluation, not measured)
- ``device``, ``threads``, ``seed`` (training seed), ``replicate`` (0, 1, ... of the network), ``dataset``, ``curve`` (list of per-epoch dicts), ``spec`` (dict)
- ``schedule``: the study's learning-rate schedule after warm-up (cosine and linear decay to zero, constant)
- ``best``: True on the trials of the study's best network, by its kind's one definition (the reward for a baseline
  search, validation accuracy for the others; ties to fewer FLOPs, then the earlier trial)

Analyses of accuracy use the rows whose ``status`` is complete (:func:`complete`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.storages import BaseStorage

from scalelab.analysis.replicates import mean_intervals
from scalelab.search.record import Status, TrialRecord, study_records
from scalelab.search.storage import open_storage, storage_url
from scalelab.search.study import load, read_config, read_plan

COLUMNS = ("study", "kind", "trial", "status", "reason", "dimension", "depth_mult", "width_mult",
           "resolution_mult", "alpha", "beta", "gamma", "phi", "multiple", "predicted_ratio", "measured_ratio",
           "model", "params", "flops", "resolution_px", "latency_ms", "val_acc", "test_acc", "epochs", "wall_s",
           "images_per_s", "val_images", "train_s", "overhead_s", "overhead_fraction", "at_chance", "converged", "device", "threads", "seed", "replicate", "dataset",
           "curve", "spec", "schedule", "best")
NUMERIC = ("depth_mult", "width_mult", "resolution_mult", "alpha", "beta", "gamma", "phi", "multiple",
           "predicted_ratio", "measured_ratio", "params", "flops", "resolution_px", "latency_ms", "val_acc",
           "test_acc", "epochs", "wall_s", "images_per_s", "val_images", "train_s", "overhead_s", "overhead_fraction",
           "threads", "seed", "replicate")


def results_table(storage: str | BaseStorage, study_name: str | None = None) -> pd.DataFrame:
    """Every recorded trial of ``study_name`` (or of every study in ``storage``), as rows.

    ``storage`` is a storage object, a SQLAlchemy URL or a SQLite file path; a missing file or study
    raises :class:`~scalelab.errors.SearchError`.
    """
    storage = _open(storage)
    if study_name is not None:
        studies = [load(storage, study_name)]
    else:
        studies = [optuna.load_study(study_name=s.study_name, storage=storage) for s in storage.get_all_studies()]
    rows = []
    for study in studies:
        records = study_records(study)
        config = read_config(study)
        best = config.study_kind.best(config, read_plan(study), records)
        rows += [{**row(r), "schedule": config.train.schedule,
                  "best": best is not None and r.spec.name == best.spec.name} for r in records]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["best"] = table["best"].astype(bool)
    for column in NUMERIC:  # None -> NaN, so the columns are numeric even where a kind leaves them empty
        table[column] = pd.to_numeric(table[column])
    return table


def complete(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of trials trained to the end."""
    return table[table["status"] == Status.COMPLETE.value]


def network_means(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per network of each study, over its complete replicates: the network's columns (first
    replicate's), ``n`` replicates, ``val_acc_mean``, ``val_acc_sd`` (its own seeds' spread) and the t
    interval of the mean from the seed spread pooled over the study's networks (``val_acc_lower``,
    ``val_acc_upper``: NaN with one replicate; see :mod:`scalelab.analysis.replicates`), and
    ``test_acc_mean`` over the replicates that evaluated the test split."""
    done = complete(table)
    if done.empty:
        return done.assign(n=[], val_acc_mean=[], val_acc_sd=[], val_acc_lower=[], val_acc_upper=[],
                           test_acc_mean=[])
    grouped = done.groupby(["study", "model"], sort=False)
    first = grouped.head(1).set_index(["study", "model"])
    acc = grouped["val_acc"]
    out = first.assign(n=acc.count(), val_acc_mean=acc.mean(), val_acc_sd=acc.std(ddof=1),
                       test_acc_mean=grouped["test_acc"].mean())
    bounds = {}
    for study, networks in done.groupby("study", sort=False):
        models, groups = zip(*((model, list(values)) for model, values in
                               networks.groupby("model", sort=False)["val_acc"]))
        for model, interval in zip(models, mean_intervals(groups, level)):
            bounds[study, model] = interval or (np.nan, np.nan)
    lower, upper = zip(*(bounds[key] for key in out.index))
    return out.assign(val_acc_lower=lower, val_acc_upper=upper).reset_index()


def overhead_line(table: pd.DataFrame) -> str | None:
    """One sentence on the time the trials spent outside training, or None where none was measured."""
    share = table["overhead_fraction"].dropna()
    if share.empty:
        return None
    seconds = table["overhead_s"].dropna()
    return (f"Outside training: median {share.median():.1%} of a trial's time (range {share.min():.1%} to "
            f"{share.max():.1%}; median {seconds.median():.1f} s) over {len(share)} trial(s)")


def row(r: TrialRecord) -> dict[str, Any]:
    """One record as a row of the table."""
    p = r.point
    point = {} if p is None else dict(
        dimension=p.dimension, depth_mult=p.scale.depth, width_mult=p.scale.width,
        resolution_mult=p.scale.resolution, alpha=p.alpha, beta=p.beta, gamma=p.gamma, phi=p.phi,
        multiple=p.multiple, predicted_ratio=p.predicted_ratio, measured_ratio=p.measured_ratio)
    return {**dict.fromkeys(COLUMNS[:-2]), **point,
            "study": r.study, "kind": r.kind, "trial": r.number, "status": r.status.value, "reason": r.reason,
            "model": r.spec.name, "params": r.cost.params, "flops": r.cost.flops,
            "resolution_px": r.spec.resolution, "latency_ms": r.cost.latency_ms, "val_acc": r.outcome.val_acc,
            "test_acc": r.outcome.test_acc, "epochs": r.outcome.epochs, "wall_s": r.outcome.wall_s,
            "images_per_s": r.outcome.images_per_s, "val_images": r.outcome.val_images,
            "train_s": r.outcome.train_s, "overhead_s": r.outcome.overhead_s,
            "overhead_fraction": r.outcome.overhead_fraction,
            "at_chance": r.at_chance, "converged": r.converged, "device": r.provenance.device,
            "threads": r.provenance.threads, "seed": r.provenance.seed, "replicate": r.replicate, "dataset": r.dataset,
            "curve": [dataclasses.asdict(e) for e in r.curve], "spec": r.spec.to_dict()}


def search_rewards(storage: str | BaseStorage) -> dict[str, tuple[float, float]]:
    """(T in multiply-adds, w) of every baseline search in ``storage`` whose reward was on FLOPs."""
    from scalelab.search.config import config_from_dict

    storage = _open(storage)
    out = {}
    for summary in storage.get_all_studies():
        attrs = summary.user_attrs
        if "settings" not in attrs or "plan" not in attrs:
            continue
        config = config_from_dict(attrs["settings"])
        facts = attrs["plan"].get("facts", {})
        if facts.get("cost_unit") == "multiply-adds" and "target" in facts:
            out[summary.study_name] = (float(facts["target"]), float(config.search.w))
    return out


def judged_levels(storage: str | BaseStorage) -> dict[str, float]:
    """The level each study in ``storage`` that settles a question judged it at: every grid's winner, and
    the compound verdicts of a sweep that stopped adding seeds once settled (95% shared among its looks)."""
    from scalelab.search.config import config_from_dict
    from scalelab.search.kinds.grid import SEPARATION_LEVEL
    from scalelab.search.kinds.sweep import VERDICT_LEVEL

    storage = _open(storage)
    out = {}
    for summary in storage.get_all_studies():
        settings = summary.user_attrs.get("settings")
        if settings is None:
            continue
        if settings.get("kind") == "grid":
            out[summary.study_name] = config_from_dict(settings).judged_at(SEPARATION_LEVEL)
        elif settings.get("kind") == "sweep" and settings.get("settle_after"):
            out[summary.study_name] = config_from_dict(settings).judged_at(VERDICT_LEVEL)
    return out


def _open(storage: str | BaseStorage) -> BaseStorage:
    """An existing storage from a URL or SQLite path (never creates one), or the storage given."""
    return open_storage(storage_url(storage), create=False, read_only=True) if isinstance(storage, str) else storage
