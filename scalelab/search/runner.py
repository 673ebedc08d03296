"""Workers: the loop that takes trials from a study until none is left, in this process or in several.

A worker pops queued trials (enumerated kinds: one per point, so no point runs twice) or asks the sampler
for new ones (baseline search, until ``trials`` have finished), and records a heartbeat while each runs.
It stops when nothing is queued and nothing is running. While another worker's trial runs, it waits:
if that worker dies, its trial's heartbeat goes stale, the trial is failed and queued again (see
:mod:`scalelab.search.storage`), and a live worker must pick it up. A trial interrupted here (Ctrl-C,
an error) is failed and queued again at once, so a re-run trains it from the start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator

import optuna
import torch
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from scalelab.device import pick_device
from scalelab.errors import ScalelabError, SearchError
from scalelab.search.config import StudyConfig
from scalelab.search.storage import MAX_RETRY, open_storage
from scalelab.search.study import load, pruner_for, read_config, sampler_for
from scalelab.search.trial import Objective
from scalelab.units import si

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def work(url: str, study_name: str, *, device: str = "auto", progress: bool = True, worker: int = 0,
         data_dir: str | None = None) -> int:
    """Run trials of the study until it is done; returns how many this worker ran. ``data_dir`` says
    where the study's dataset lies on this machine, when not where the study says."""
    config = read_config(load(open_storage(url, create=False), study_name))
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    storage = open_storage(url, create=False, heartbeat_s=config.heartbeat_s)
    study = load(storage, study_name)
    study.sampler = sampler_for(config, worker, len(study.get_trials(deepcopy=False)))
    study.pruner = pruner_for(config)
    objective = Objective.for_study(study, config, pick_device(device), progress=progress)
    return _Worker(study, storage, objective, config, progress).run()


def run_workers(url: str, study_name: str, workers: int, *, device: str = "auto", progress: bool = True) -> None:
    """``workers`` processes on this machine (or this process alone when 1) work on the study."""
    if workers == 1:
        work(url, study_name, device=device, progress=progress)
        return
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    threads = max(1, (os.cpu_count() or 1) // workers)  # one oversubscribed CPU crawls with OpenMP spin-waits
    procs = [ctx.Process(target=_worker_process, args=(url, study_name, device, progress, i, threads),
                         name=f"scalelab-worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:  # the workers got the same Ctrl-C: let them fail and requeue their trials
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise SearchError(f"{', '.join(failed)} stopped with an error (see above); fix it and re-run the "
                          "command to resume the study")


def _worker_process(url: str, study_name: str, device: str, progress: bool, index: int, threads: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(threads)
    try:
        work(url, study_name, device=device, progress=progress, worker=index)
    except ScalelabError as exc:
        print(f"error: worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


class _Worker:
    def __init__(self, study: optuna.Study, storage: RDBStorage, objective: Objective, config: StudyConfig,
                 progress: bool) -> None:
        self.study, self.storage, self.objective, self.config, self.progress = \
            study, storage, objective, config, progress
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.total = config.search.trials if config.kind == "baseline" else len(objective.points)

    def run(self) -> int:
        ran = 0
        while True:
            with _quiet():
                optuna.storages.fail_stale_trials(self.study)
            trial = self._next()
            if trial is not None:
                self._run(trial)
                ran += 1
            elif self._count((TrialState.RUNNING,)):
                time.sleep(min(5.0, self.config.heartbeat_s))
            else:
                return ran

    def _next(self) -> optuna.Trial | None:
        if self.config.kind != "baseline":
            return self._pop()
        if self._count(FINISHED + (TrialState.RUNNING,)) >= self.total:
            return None
        with _quiet():
            trial = self.study.ask()  # takes a queued (retried) trial first, else samples a new network
        self.storage.record_heartbeat(self._id(trial.number))
        return trial

    def _pop(self) -> optuna.Trial | None:
        """Claim a queued trial. Its heartbeat is recorded before the claim, so a worker dying right after
        claiming still leaves a heartbeat that goes stale (a trial without one is never judged stale)."""
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial_id = self._id(frozen.number)
            self.storage.record_heartbeat(trial_id)
            try:
                if self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    return optuna.Trial(self.study, trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def _run(self, trial: optuna.Trial) -> None:
        trial_id = self._id(trial.number)
        try:
            with _Heartbeat(self.storage, trial_id, self.config.heartbeat_s):
                try:
                    values = self.objective(trial)
                except optuna.TrialPruned:
                    self.study.tell(trial, state=TrialState.PRUNED)
                except BaseException:
                    self.study.tell(trial, state=TrialState.FAIL)
                    self._requeue(trial_id)
                    raise
                else:
                    self.study.tell(trial, values)
        except optuna.exceptions.UpdateFinishedTrialError:
            self._say(f"trial {trial.number}: another worker judged it dead (no heartbeat for "
                      f"{3 * self.config.heartbeat_s} s) and queued it again; this result is dropped")
            return
        self._report(self.storage.get_trial(trial_id))

    def _requeue(self, trial_id: int) -> None:
        """Queue a copy of a failed trial, as Optuna does for a stale one (retry history included)."""
        with _quiet():
            RetryHeartbeatStaleTrialCallback(MAX_RETRY)(self.study, self.storage.get_trial(trial_id))

    def _report(self, t: optuna.trial.FrozenTrial) -> None:
        a = t.user_attrs
        head = f"trial {t.number} ({self._count(FINISHED)}/{self.total} finished): {a['spec']['name']}: "
        if t.state == TrialState.PRUNED:
            self._say(head + a.get("reason", "pruned"))
        else:
            latency = f", {a['latency_ms']:.2f} ms" if a.get("latency_ms") is not None else ""
            self._say(head + f"val acc {a['val_acc']:.2%}, {si(a['flops'], 'multiply-adds')}{latency}, "
                             f"{a['wall_s']:.1f} s")

    def _say(self, line: str) -> None:
        if self.progress:
            print(f"[{self.study.study_name}] {line}", file=sys.stderr, flush=True)

    def _count(self, states: tuple[TrialState, ...]) -> int:
        return len(self.study.get_trials(deepcopy=False, states=states))

    def _id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's warnings that heartbeats and retries are experimental, and that heartbeats are
    meant for Study.optimize (this loop records them itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        yield


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` seconds from a thread while the block runs."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval: int) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self) -> None:
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
