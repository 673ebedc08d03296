"""One trial of any kind: take its network from the kind, price it (or reuse the price its plan
measured), stop for free when it is over a cap, train it while reporting validation accuracy as
intermediate values (pruning where the kind prunes), and write its :class:`TrialRecord` once, however it
ends."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import optuna
import torch
from optuna.storages import BaseStorage

from scalelab import checkpoint as ckpt
from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import measure_latency
from scalelab.cost_cache import cached_cost
from scalelab.data import Splits, load_dataset, split_validation
from scalelab.errors import TrainingError
from scalelab.search import overhead
from scalelab.search.config import StudyConfig
from scalelab.search.halving import ATTR_PREFIX, HalvingPruner, checkpoint_dir, checkpoint_path
from scalelab.search.kinds import Values
from scalelab.search.kinds.enumerated import NOT_NEEDED_ATTR, REPLICATE_ATTR, SETTLED_ATTR
from scalelab.search.record import (Outcome, Point, Provenance, Status, TrialCost, TrialRecord, read_record,
                                    study_records, write_record)
from scalelab.search.retry import TRANSIENT, with_retry
from scalelab.search.study import point_of, read_plan
from scalelab.train import EpochRecord, train

RECORD_RETRY_S = 30.0
"""How long writing a finished trial's record waits out a failing storage."""


class TrialFailed(Exception):
    """The trial produced no usable result; its record is written and the worker counts it failed."""


class TrialStopped(optuna.TrialPruned):
    """The trial ended early (pruned, diverged or over a cap); its record is written."""


class TrialPaused(Exception):
    """The trial waits at a rung of synchronous halving, its record written and its training state
    saved: the worker puts it back in the queue, held there until the rung is judged."""

    def __init__(self, rung: int) -> None:
        super().__init__(f"waiting at epoch {rung}")
        self.rung = rung


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
        pruner = self.kind.pruner(config)
        self.prunes = not isinstance(pruner, optuna.pruners.NopPruner)
        self.rungs = pruner.rungs if isinstance(pruner, HalvingPruner) and pruner.settings.synchronous else None
        """Synchronous halving's rungs, where a trial waits for the others; None otherwise."""
        self.checkpoints = None if self.rungs is None else checkpoint_dir(getattr(storage, "url", ""),
                                                                          study.study_name)

    @classmethod
    def for_study(cls, study: optuna.Study, storage: BaseStorage, config: StudyConfig, device: torch.device,
                  progress: bool = False) -> Objective:
        """Loads the study's dataset and validation split."""
        ds = load_dataset(config.dataset, config.data_dir)
        splits = split_validation(ds, config.val_fraction, config.train.seed, config.train_fraction)
        return cls(study, storage, config, splits, device, progress)

    def __call__(self, trial: optuna.Trial) -> Values:
        started, before = time.perf_counter(), overhead.since_last_trial()
        index = point_of(trial)
        if index is not None and index >= len(self.plan.networks):  # another command grew the study since
            self.plan = read_plan(self.study)
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
        checkpoint = None if self.checkpoints is None else checkpoint_path(self.checkpoints, trial)
        record = _Recorder(self.storage, trial_id, trial, self.config, spec, c, point, str(self.device), started,
                           before, replicate, recipe.seed, checkpoint)
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
                           evaluate_test=self.config.evaluate_test, progress=self.progress, checkpoint=checkpoint,
                           on_resume=lambda curve: self._on_resume(trial, record, curve))
        except TrainingError as exc:
            record.stop(Status.DIVERGED, str(exc))
        except (TrialStopped, TrialPaused, StorageLost, *TRANSIENT):
            raise  # recorded already; or a storage still failing after retries: left to be judged dead and re-run
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

    def _on_resume(self, trial: optuna.Trial, record: _Recorder, curve: list[EpochRecord]) -> None:
        """Training went on from a checkpoint: its curve so far is the trial's (a retried copy reports it
        again), and the time its earlier stretch took is added to this one's. A trial whose state was saved
        at a rung not yet judged for it waits there first."""
        record.curve = list(curve)
        known = self.storage.get_trial(record.trial_id)
        for step, point in enumerate(curve, 1):
            if step not in known.intermediate_values:
                self._report(trial, record, point, step)
        earlier = read_record(known)
        if earlier is not None and earlier.status is Status.PAUSED:
            record.earlier = earlier.outcome
        rung = len(curve)
        if self.rungs is not None and rung in self.rungs and f"{ATTR_PREFIX}{rung}" not in known.system_attrs:
            record.pause(rung)  # stopped (a crash) between saving its state at a rung and waiting there

    def _report(self, trial: optuna.Trial, record: _Recorder, epoch: EpochRecord, step: int) -> bool:
        """Report an evaluation as the trial's intermediate value at ``step``; False where the study has
        several objectives (Optuna keeps intermediate values of single-objective studies only)."""
        value = self.kind.values(self.config, self.plan, epoch.val_acc, record.cost)
        if isinstance(value, tuple):
            return False
        with_retry(lambda: trial.report(value, step), within_s=RECORD_RETRY_S)
        return True

    def _on_epoch(self, trial: optuna.Trial, record: _Recorder, epoch: EpochRecord) -> None:
        self.check_alive()
        record.curve.append(epoch)
        if not self._report(trial, record, epoch, len(record.curve)):
            return
        budget = self.config.train.image_budget(len(self.splits.train[1]))
        if self.rungs is not None and len(record.curve) in self.rungs and epoch.images_seen < budget:
            record.pause(len(record.curve))
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
                 before: float, replicate: int, seed: int, checkpoint: Path | None = None) -> None:
        self.storage, self.trial_id, self.replicate, self.seed = storage, trial_id, replicate, seed
        self.trial, self.config, self.spec, self.cost, self.point = trial, config, spec, c, point
        self.device, self.started, self.before = device, started, before
        self.training_began: float | None = None
        self.training_ended: float | None = None
        self.curve: list[EpochRecord] = []
        self.checkpoint = checkpoint
        self.earlier: Outcome | None = None
        """The outcome recorded when this trial last waited at a rung (its times are added to this stretch's)."""

    def end(self, status: Status, outcome: Outcome | None = None, reason: str | None = None) -> None:
        outcome = outcome or Outcome(val_acc=self.curve[-1].val_acc if self.curve else None,
                                     epochs=_epochs(self.curve))
        now = time.perf_counter()
        began = self.training_began if self.training_began is not None else now
        train_s = (self.training_ended or now) - began  # a trial stopped inside training ends it now
        wall_s = now - self.started
        overhead_s = self.before + wall_s - train_s
        if self.earlier is not None:
            wall_s, train_s = wall_s + (self.earlier.wall_s or 0.0), train_s + (self.earlier.train_s or 0.0)
            overhead_s += self.earlier.overhead_s or 0.0
        outcome = Outcome(**{**vars(outcome), "wall_s": wall_s, "train_s": train_s, "overhead_s": overhead_s})
        record = TrialRecord(study=self.trial.study.study_name, number=self.trial.number, kind=self.config.kind,
                             dataset=self.config.dataset, spec=self.spec, cost=self.cost, status=status,
                             provenance=Provenance.here(self.device, self.seed), point=self.point,
                             curve=tuple(self.curve), outcome=outcome, reason=reason, replicate=self.replicate)
        with_retry(lambda: write_record(self.storage, self.trial_id, record), within_s=RECORD_RETRY_S)
        overhead.trial_written()
        if self.checkpoint is not None and status not in (Status.PAUSED, Status.FAILED):
            ckpt.remove(self.checkpoint)  # ended for good; a failed trial's retry goes on from it

    def pause(self, rung: int) -> NoReturn:
        self.end(Status.PAUSED, reason=f"waiting at epoch {rung} until every network has reached it "
                                       "(synchronous successive halving)")
        raise TrialPaused(rung)

    def stop(self, status: Status, reason: str) -> NoReturn:
        self.end(status, reason=reason)
        raise TrialStopped(reason)


def _price(spec: NetworkSpec) -> TrialCost:
    c = cached_cost(spec)
    return TrialCost(params=c.params, flops=c.flops)


def _epochs(curve: list[EpochRecord]) -> float:
    return curve[-1].epoch if curve else 0.0
