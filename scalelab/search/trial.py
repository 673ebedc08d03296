"""One trial: price the network before training it, stop for free when it is over a hard cap, train it
with pruning on validation accuracy, and record everything on the Optuna trial.

Trial user attributes (None where not applicable): ``kind``, ``dataset``, ``split`` ('val': the split
``val_acc`` and the objective use), ``spec`` (dict), ``params``, ``flops`` (multiply-adds per image),
``latency_ms`` (batch 1, in searches on latency and in comparisons), ``dimension``, ``depth``/``width``/``resolution``
(multipliers), ``alpha``/``beta``/``gamma``/``phi``, ``multiple`` (planned FLOPs multiple),
``aliases`` (grid points or sweep settings that round to this same network), ``curve`` (one dict per
epoch: epoch, images_seen, train_loss, train_acc, val_acc, wall_s), ``val_acc``, ``test_acc`` (when
evaluated), ``epochs`` (trained), ``wall_s``, ``device``, ``images_per_s`` and, for a trial stopped
early, ``reason``. Grid trials add ``predicted_ratio`` and ``measured_ratio``; trials priced against
``--max-memory`` add ``train_memory_bytes``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

import optuna
import torch

from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import cost, measure_latency, training_memory
from scalelab.data import Splits, load_dataset, split_validation
from scalelab.errors import TrainingError
from scalelab.search.config import StudyConfig
from scalelab.search.points import POINT_ATTRS, Point
from scalelab.search.space import suggest_spec
from scalelab.search.targets import reward
from scalelab.train import EpochRecord, train
from scalelab.units import si

Values = float | tuple[float, float]


class Objective:
    """Callable on an Optuna trial; returns the study's objective value(s)."""

    def __init__(self, study: optuna.Study, config: StudyConfig, splits: Splits, device: torch.device,
                 progress: bool = False) -> None:
        attrs = study.user_attrs
        self.config, self.splits, self.device, self.progress = config, splits, device, progress
        self.points = [Point.from_dict(p) for p in attrs.get("plan", [])]
        self.skeleton = NetworkSpec.from_dict(attrs["baseline_spec"]) if attrs.get("baseline_spec") else None
        self.limits = attrs.get("resolved", {}) if config.kind == "baseline" else {}
        self.pareto = len(study.directions) > 1
        self.prunes = not isinstance(study.pruner, optuna.pruners.NopPruner)

    @classmethod
    def for_study(cls, study: optuna.Study, config: StudyConfig, device: torch.device,
                  progress: bool = False) -> Objective:
        """Loads the study's dataset and validation split."""
        ds = load_dataset(config.dataset, config.data_dir)
        return cls(study, config, split_validation(ds, config.val_fraction, config.train.seed), device, progress)

    @property
    def latency(self) -> bool:
        return self.limits.get("cost_unit") == "ms"

    def __call__(self, trial: optuna.Trial) -> Values:
        spec, where = self._network(trial)
        _set(trial, {**dict.fromkeys(POINT_ATTRS), "latency_ms": None, "test_acc": None, "reason": None,
                     **where, "kind": self.config.kind, "dataset": self.config.dataset, "split": "val"})
        c = cost(spec)
        _set(trial, dict(spec=spec.to_dict(), params=c.params, flops=c.flops))
        latency = None
        if self.latency or self.config.kind == "compare":  # comparisons report latency (Table 2, Figure 4)
            latency = measure_latency(build(spec), spec.resolution, 1, device=self.device).median_ms
            trial.set_user_attr("latency_ms", latency)
        price = latency if self.latency else float(c.flops)
        self._check_caps(trial, spec, c.flops)
        curve: list[dict[str, Any]] = []
        try:
            result = train(spec, self.splits, self.config.train, device=self.device,
                           on_epoch=lambda r: self._on_epoch(trial, r, curve, price),
                           evaluate_test=self.config.evaluate_test, progress=self.progress)
        except TrainingError as exc:
            _stop(trial, str(exc), curve)
        _set(trial, dict(curve=curve, val_acc=result.val_acc, test_acc=result.test_acc, wall_s=result.wall_s,
                         device=result.device, images_per_s=result.images_per_s, epochs=_epochs(curve)))
        return self._values(result.val_acc, price)

    def _network(self, trial: optuna.Trial) -> tuple[NetworkSpec, dict[str, Any]]:
        if self.config.kind == "baseline":
            return suggest_spec(trial, self.skeleton), {}
        p = self.points[trial.suggest_int("point", 0, len(self.points) - 1)]
        return p.spec, p.attrs

    def _values(self, accuracy: float, price: float) -> Values:
        if self.pareto:
            return accuracy, price
        if self.config.kind == "baseline":
            return reward(accuracy, price, self.limits["target"], self.config.search.w)
        return accuracy

    def _check_caps(self, trial: optuna.Trial, spec: NetworkSpec, flops: int) -> None:
        cap = self.limits.get("max_flops")
        if cap is not None and flops > cap:
            _stop(trial, f"over --max-flops: {si(flops, 'multiply-adds')} > {si(cap, 'multiply-adds')}; "
                         "not trained")
        cap = self.limits.get("max_memory")
        if cap is not None:
            need = training_memory(build(spec), spec.resolution, self.config.train.batch_size, device=self.device)
            trial.set_user_attr("train_memory_bytes", need)
            if need > cap:
                _stop(trial, f"over --max-memory: training needs {si(need, 'B')} > {si(cap, 'B')}; not trained")

    def _on_epoch(self, trial: optuna.Trial, record: EpochRecord, curve: list[dict[str, Any]],
                  price: float) -> None:
        curve.append(dataclasses.asdict(record))
        trial.set_user_attr("curve", curve)
        if not self.prunes:
            return
        trial.report(self._values(record.val_acc, price), len(curve))
        budget = self.config.train.image_budget(len(self.splits.train[1]))
        if record.images_seen < budget and trial.should_prune():  # the last epoch ends the trial anyway
            _stop(trial, f"pruned after epoch {record.epoch:.2f}: validation accuracy {record.val_acc:.1%} "
                         "is below the median of earlier trials at that point", curve)


def _set(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def _stop(trial: optuna.Trial, reason: str, curve: list[dict[str, Any]] | None = None) -> NoReturn:
    """End the trial as pruned, keeping why and how far it got."""
    _set(trial, dict(reason=reason, epochs=_epochs(curve or [])))
    raise optuna.TrialPruned(reason)


def _epochs(curve: list[dict[str, Any]]) -> float:
    return curve[-1]["epoch"] if curve else 0.0
