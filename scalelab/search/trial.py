"""One trial of any kind: take its network from the kind, price it (or reuse the price its plan
measured), stop for free when it is over a cap, train it while reporting validation accuracy as
intermediate values (pruning where the kind prunes), and write its :class:`TrialRecord` once, however it
ends."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import NoReturn

import optuna
import torch
from optuna.storages import BaseStorage

from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import measure_latency
from scalelab.cost_cache import cached_cost
from scalelab.data import Splits, load_dataset, split_validation
from scalelab.errors import TrainingError
from scalelab.search import overhead
from scalelab.search.config import StudyConfig
from scalelab.search.halving import HalvingPruner
from scalelab.search.kinds import Values
from scalelab.search.kinds.enumerated import NOT_NEEDED_ATTR, REPLICATE_ATTR, SETTLED_ATTR
from scalelab.search.record import (Outcome, Point, Provenance, Status, TrialCost, TrialRecord, study_records,
                                    write_record)
from scalelab.search.retry import TRANSIENT, with_retry
from scalelab.search.study import read_plan
from scalelab.train import EpochRecord, train

RECORD_RETRY_S = 30.0
"""How long writing a finished trial's record waits out a failing storage."""


class TrialFailed(Exception):
    """The trial produced no usable result; its record is written and the worker counts it failed."""


class TrialStopped(optuna.TrialPruned):
    """The trial ended early (pruned, diverged or over a cap); its record is written."""


class StorageLost(Exception):
    """The trial's heartbeat stopped reaching the storage: the trial ends unrecorded, to be re-run."""


class Objective:
    """Callable on an Optuna trial; returns the study's objective value(s). ``check_alive`` is called
    after every epoch and raises :class:`StorageLost` when the trial must stop unrecorded."""

    check_alive: Callable[[], None] = staticmethod(lambda: None)

    def __init__(self, study: optuna.Study, storage: BaseStorage, config: StudyConfig, splits: Splits,
                 device: torch.device, progress: bool = False) -> None:
        self.study, self.storage, self.config, self.splits = study, storage, config, splits
        self.device, self.progress = device, progress
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.kind = config.study_kind
        self.plan = read_plan(study)
        self.prunes = not isinstance(self.kind.pruner(config), optuna.pruners.NopPruner)

    @classmethod
    def for_study(cls, study: optuna.Study, storage: BaseStorage, config: StudyConfig, device: torch.device,
                  progress: bool = False) -> Objective:
        """Loads the study's dataset and validation split."""
        ds = load_dataset(config.dataset, config.data_dir)
        splits = split_validation(ds, config.val_fraction, config.train.seed, config.train_fraction)
        return cls(study, storage, config, splits, device, progress)

    def __call__(self, trial: optuna.Trial) -> Values:
        started, before = time.perf_counter(), overhead.since_last_trial()
        spec, point, known = with_retry(lambda: self.kind.network(trial, self.config, self.plan),
                                        within_s=RECORD_RETRY_S)
        c = known or _price(spec)
        if self.kind.measures_latency(self.config):
            latency = measure_latency(build(spec), spec.resolution, 1, device=self.device).median_ms
            c = TrialCost(c.params, c.flops, latency, c.train_memory_bytes)
        c, over = self.kind.over_cap(self.config, self.plan, spec, c, self.device)
        replicate = trial.user_attrs.get(REPLICATE_ATTR, 0)
        recipe = dataclasses.replace(self.config.train, seed=self.config.train.seed + replicate)
        trial_id = with_retry(lambda: self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number),
                              within_s=RECORD_RETRY_S)
        record = _Recorder(self.storage, trial_id, trial, self.config, spec, c, point, str(self.device), started,
                           before, replicate, recipe.seed)
        if over is not None:
            record.stop(Status.OVER_CAP, over)
        if self.config.settle_after and replicate >= self.config.settle_after:
            settled = with_retry(lambda: self.kind.settled(self.config, self.plan, study_records(trial.study)),
                                 within_s=RECORD_RETRY_S)
            if settled is not None:
                with_retry(lambda: self._not_needed(trial_id, settled), within_s=RECORD_RETRY_S)
                record.stop(Status.PRUNED, f"not trained: {settled}")
        record.training_began = time.perf_counter()
        try:
            result = train(spec, self.splits, recipe, device=self.device,
                           on_epoch=lambda r: self._on_epoch(trial, record, r),
                           evaluate_test=self.config.evaluate_test, progress=self.progress)
        except TrainingError as exc:
            record.stop(Status.DIVERGED, str(exc))
        except (TrialStopped, StorageLost, *TRANSIENT):
            raise  # a storage still failing after retries: the trial is left to be judged dead and re-run
        except BaseException as exc:  # an error or an interruption: recorded, then queued again by the worker
            record.end(Status.FAILED, reason=f"{type(exc).__name__}: {exc}".strip(": "))
            raise
        record.training_ended = time.perf_counter()
        self.check_alive()
        if not math.isfinite(result.val_acc):
            reason = (f"validation accuracy is {result.val_acc} (an empty validation split?); raise --val-fraction")
            record.end(Status.FAILED, reason=reason)
            raise TrialFailed(reason)
        record.end(Status.COMPLETE, Outcome(val_acc=result.val_acc, test_acc=result.test_acc,
                                            images_per_s=result.images_per_s, epochs=_epochs(record.curve),
                                            val_images=len(self.splits.val[1])))
        return self.kind.values(self.config, self.plan, result.val_acc, c)

    def _not_needed(self, trial_id: int, why: str) -> None:
        """Mark a replicate past ``settle_after`` that the study's answer no longer needs."""
        self.storage.set_trial_user_attr(trial_id, NOT_NEEDED_ATTR, True)
        self.storage.set_study_user_attr(self.study_id, SETTLED_ATTR, why)

    def _on_epoch(self, trial: optuna.Trial, record: _Recorder, epoch: EpochRecord) -> None:
        self.check_alive()
        record.curve.append(epoch)
        value = self.kind.values(self.config, self.plan, epoch.val_acc, record.cost)
        if isinstance(value, tuple):  # Optuna keeps intermediate values of single-objective studies only
            return
        with_retry(lambda: trial.report(value, len(record.curve)), within_s=RECORD_RETRY_S)
        budget = self.config.train.image_budget(len(self.splits.train[1]))
        if (self.prunes and epoch.images_seen < budget  # the last epoch ends the trial anyway
                and with_retry(trial.should_prune, within_s=RECORD_RETRY_S)):
            pruner = trial.study.pruner
            if isinstance(pruner, HalvingPruner):
                record.stop(Status.PRUNED, f"stopped by successive halving: {pruner.last[trial.number].why}")
            record.stop(Status.PRUNED, f"pruned after epoch {epoch.epoch:.2f}: validation accuracy "
                                       f"{epoch.val_acc:.1%} is below the median of earlier trials at that point")


class _Recorder:
    """Collects one trial's curve and writes its record once, when the trial ends."""

    def __init__(self, storage: BaseStorage, trial_id: int, trial: optuna.Trial, config: StudyConfig,
                 spec: NetworkSpec, c: TrialCost, point: Point | None, device: str, started: float,
                 before: float, replicate: int, seed: int) -> None:
        self.storage, self.trial_id, self.replicate, self.seed = storage, trial_id, replicate, seed
        self.trial, self.config, self.spec, self.cost, self.point = trial, config, spec, c, point
        self.device, self.started, self.before = device, started, before
        self.training_began: float | None = None
        self.training_ended: float | None = None
        self.curve: list[EpochRecord] = []

    def end(self, status: Status, outcome: Outcome | None = None, reason: str | None = None) -> None:
        outcome = outcome or Outcome(val_acc=self.curve[-1].val_acc if self.curve else None,
                                     epochs=_epochs(self.curve))
        now = time.perf_counter()
        began = self.training_began if self.training_began is not None else now
        train_s = (self.training_ended or now) - began  # a trial stopped inside training ends it now
        wall_s = now - self.started
        outcome = Outcome(**{**vars(outcome), "wall_s": wall_s, "train_s": train_s,
                             "overhead_s": self.before + wall_s - train_s})
        record = TrialRecord(study=self.trial.study.study_name, number=self.trial.number, kind=self.config.kind,
                             dataset=self.config.dataset, spec=self.spec, cost=self.cost, status=status,
                             provenance=Provenance.here(self.device, self.seed), point=self.point,
                             curve=tuple(self.curve), outcome=outcome, reason=reason, replicate=self.replicate)
        with_retry(lambda: write_record(self.storage, self.trial_id, record), within_s=RECORD_RETRY_S)
        overhead.trial_written()

    def stop(self, status: Status, reason: str) -> NoReturn:
        self.end(status, reason=reason)
        raise TrialStopped(reason)


def _price(spec: NetworkSpec) -> TrialCost:
    c = cached_cost(spec)
    return TrialCost(params=c.params, flops=c.flops)


def _epochs(curve: list[EpochRecord]) -> float:
    return curve[-1].epoch if curve else 0.0
