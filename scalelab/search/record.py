"""The trial record: everything one trial of a study is and produced, as one typed object.

A record is written once, when its trial ends (:func:`write_record`), and read back by one function
(:func:`read_record`). It is kept whole, as JSON, in the trial's system attribute ``scalelab:record``;
a few short scalar fields are copied into the trial's user attributes for readers of Optuna's own tools
(optuna-dashboard cuts attributes at 1,024 characters, which would mangle a spec or a curve; the curve
is also reported as the trial's intermediate values, one per evaluation).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from scalelab.arch.scaling import Scale
from scalelab.arch.spec import NetworkSpec
from scalelab.train import EpochRecord

RECORD_KEY = "scalelab:record"
CHANCE_Z = 3.0
"""Standard errors above chance within which an accuracy is called 'at chance' (one-sided, about 0.1%)."""
CONVERGED_GAIN = 0.005
"""Validation accuracy gained in the last epoch (per epoch) above which a network is 'not converged'."""
SCHEMA = 2
"""Version of the stored record; studies written before records existed are version 1 (see
:mod:`scalelab.search.migrate`)."""


class Status(str, Enum):
    """How a trial ended. Optuna's own state is coarser: every status but ``complete``, ``failed`` and
    ``paused`` is PRUNED there (the trial stopped early and must not be retried)."""

    COMPLETE = "complete"    # trained to the end of its budget
    PRUNED = "pruned"        # stopped by the pruner below the median of earlier trials
    DIVERGED = "diverged"    # the loss became NaN or infinite
    OVER_CAP = "over_cap"    # over a hard FLOPs or memory cap: never trained
    FAILED = "failed"        # an error, or an interruption; the trial is queued again
    PAUSED = "paused"        # waiting at a rung of synchronous halving (Optuna: WAITING, held back)


@dataclass(frozen=True)
class Point:
    """Where a network of an enumerated study sits: its scaling ``dimension`` (width, depth,
    resolution, compound; None for the base network itself), the multipliers of depth, width and
    resolution (``scale``), the compound coefficients and phi, the FLOPs ``multiple`` K it was planned
    for, its predicted growth d*w^2*r^2 and its measured FLOPs ratio to the base network after rounding,
    and, in comparisons, the ``model`` named. ``aliases``: other points that round to the same network
    and share this trial."""

    dimension: str | None = None
    scale: Scale = Scale()
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    phi: float | None = None
    multiple: float | None = None
    predicted_ratio: float | None = None
    measured_ratio: float | None = None
    model: str | None = None
    aliases: tuple[Point, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["scale"] = dict(self.scale._asdict())
        d["aliases"] = [a.to_dict() for a in self.aliases]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Point:
        return cls(**{**d, "scale": Scale(**d.get("scale", {})),
                      "aliases": tuple(cls.from_dict(a) for a in d.get("aliases", ()))})


@dataclass(frozen=True)
class TrialCost:
    """``flops`` are multiply-adds per image at the network's input size; ``latency_ms`` one image
    (batch 1) on the training device, measured in latency searches and comparisons;
    ``train_memory_bytes`` one training step, measured against a memory cap."""

    params: int
    flops: int
    latency_ms: float | None = None
    train_memory_bytes: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What training produced: ``val_acc`` on the validation split held out from the training data (what
    the objective uses), ``test_acc`` when the study evaluates the test split, throughput in training
    images per second, epochs trained and wall seconds of the whole trial; ``val_images`` is the size of
    the validation split (how precise ``val_acc`` is). ``train_s`` is the time in training (its steps and
    per-epoch validation), ``overhead_s`` the worker's time for this trial outside training
    (:mod:`scalelab.search.overhead`: start-up, data loading, planning, costing, writing); None in
    records written before they were measured."""

    val_acc: float | None = None
    test_acc: float | None = None
    images_per_s: float | None = None
    epochs: float = 0.0
    wall_s: float = 0.0
    val_images: int | None = None
    train_s: float | None = None
    overhead_s: float | None = None

    @property
    def overhead_fraction(self) -> float | None:
        """The share of the worker's time for this trial spent outside training."""
        if self.train_s is None or self.overhead_s is None or self.train_s + self.overhead_s <= 0:
            return None
        return self.overhead_s / (self.train_s + self.overhead_s)


@dataclass(frozen=True)
class Provenance:
    """Where and how the trial ran (None where not recorded: trials migrated from scalelab 0.1)."""

    scalelab: str
    torch: str | None
    host: str | None
    device: str
    threads: int | None
    seed: int

    @classmethod
    def here(cls, device: str, seed: int) -> Provenance:
        import torch

        from scalelab import __version__

        return cls(scalelab=__version__, torch=torch.__version__, host=platform.node() or os.uname().nodename,
                   device=device, threads=torch.get_num_threads(), seed=seed)


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a study. ``point`` is None in baseline searches (the network is the sampler's).
    ``reason`` says why a trial that did not complete stopped."""

    study: str
    number: int
    kind: str
    dataset: str
    spec: NetworkSpec
    cost: TrialCost
    status: Status
    provenance: Provenance
    point: Point | None = None
    curve: tuple[EpochRecord, ...] = ()
    outcome: Outcome = field(default_factory=Outcome)
    reason: str | None = None
    replicate: int = 0
    """Which replicate of its network the trial is (its training seed is the study's seed plus this)."""

    @property
    def finished(self) -> bool:
        """Trained to the end with a finite validation accuracy."""
        acc = self.outcome.val_acc
        return self.status is Status.COMPLETE and acc is not None and math.isfinite(acc)

    @property
    def chance(self) -> float:
        """The accuracy of guessing: one over the class count."""
        return 1.0 / self.spec.num_classes

    @property
    def at_chance(self) -> bool | None:
        """Whether the validation accuracy is within noise of chance: below chance plus
        :data:`CHANCE_Z` binomial standard errors of a guesser on this many validation images (None
        where the split size was not recorded)."""
        n, acc = self.outcome.val_images, self.outcome.val_acc
        if not n or acc is None:
            return None
        p = self.chance
        return acc <= p + CHANCE_Z * math.sqrt(p * (1 - p) / n)

    @property
    def converged(self) -> bool | None:
        """False when the last epoch still gained more than :data:`CONVERGED_GAIN` validation accuracy
        per epoch (the network was still improving when its budget ran out); None with fewer than two
        evaluations, where no gain was measured."""
        if len(self.curve) < 2:
            return None
        last, before = self.curve[-1], self.curve[-2]
        gain = (last.val_acc - before.val_acc) / max(last.epoch - before.epoch, 1e-9)
        return gain <= CONVERGED_GAIN

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "study": self.study, "number": self.number, "kind": self.kind,
                "dataset": self.dataset, "spec": self.spec.to_dict(), "cost": dataclasses.asdict(self.cost),
                "status": self.status.value, "provenance": dataclasses.asdict(self.provenance),
                "point": self.point.to_dict() if self.point else None,
                "curve": [dataclasses.asdict(p) for p in self.curve],
                "outcome": dataclasses.asdict(self.outcome), "reason": self.reason, "replicate": self.replicate}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialRecord:
        return cls(study=d["study"], number=d["number"], kind=d["kind"], dataset=d["dataset"],
                   spec=NetworkSpec.from_dict(d["spec"]), cost=TrialCost(**d["cost"]), status=Status(d["status"]),
                   provenance=Provenance(**d["provenance"]),
                   point=Point.from_dict(d["point"]) if d.get("point") else None,
                   curve=tuple(EpochRecord(**p) for p in d.get("curve", ())),
                   outcome=Outcome(**d.get("outcome", {})), reason=d.get("reason"), replicate=d.get("replicate", 0))


def dashboard_attrs(record: TrialRecord) -> dict[str, Any]:
    """The short, flat fields copied into the trial's user attributes (what optuna-dashboard shows)."""
    p = record.point
    attrs = {"status": record.status.value, "model": record.spec.name, "resolution_px": record.spec.resolution,
             "params": record.cost.params, "flops": record.cost.flops, "latency_ms": record.cost.latency_ms,
             "val_acc": record.outcome.val_acc, "test_acc": record.outcome.test_acc,
             "epochs": record.outcome.epochs, "images_per_s": record.outcome.images_per_s,
             "wall_s": record.outcome.wall_s, "device": record.provenance.device, "reason": record.reason,
             "replicate": record.replicate, "seed": record.provenance.seed}
    if p is not None:
        attrs.update(dimension=p.dimension, depth_mult=p.scale.depth, width_mult=p.scale.width,
                     resolution_mult=p.scale.resolution, multiple=p.multiple)
    return attrs


def write_record(storage: BaseStorage, trial_id: int, record: TrialRecord) -> None:
    """Store ``record`` on its trial (before the trial is told finished: attributes of a finished trial
    cannot change)."""
    storage.set_trial_system_attr(trial_id, RECORD_KEY, json.dumps(record.to_dict()))
    for key, value in dashboard_attrs(record).items():
        storage.set_trial_user_attr(trial_id, key, value)


def read_record(trial: FrozenTrial) -> TrialRecord | None:
    """The record of a trial, or None for a trial that has none (still running, or interrupted before it
    ended). A retry queued for a failed or stale trial inherits that trial's system attributes, its record
    included; a record of another trial number is not the retry's own, and is ignored."""
    text = trial.system_attrs.get(RECORD_KEY)
    if not text:
        return None
    record = TrialRecord.from_dict(json.loads(text))
    return record if record.number == trial.number else None


def study_records(study: optuna.Study) -> list[TrialRecord]:
    """Every recorded trial of ``study``, in trial order, named by the study it is in now (a study copied
    or renamed with Optuna's tools keeps the name it was recorded under in every record)."""
    records = [r for r in map(read_record, study.get_trials(deepcopy=False)) if r is not None]
    return [r if r.study == study.study_name else dataclasses.replace(r, study=study.study_name) for r in records]
