"""Workers: the loop that takes trials from a study until none is left, in this process or in several.

A worker pops queued trials (enumerated kinds: one per point, so no point runs twice) or asks the sampler
for new ones (baseline search, until ``trials`` have finished), and records a heartbeat while each runs.
It stops when nothing is queued and nothing is running. While another worker's trial runs, it waits:
if that worker dies, its trial's heartbeat goes stale, the trial is failed and queued again (see
:mod:`scalelab.search.storage`), and a live worker must pick it up. A trial interrupted here (Ctrl-C,
an error) is failed and queued again at once, so a re-run trains it from the start (under synchronous
halving, from its last finished epoch). Under synchronous halving a trial waiting at a rung stays queued
but held; once nothing is training, a worker judges the rung and the promoted trials are taken again.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator

import numpy as np
import optuna
import torch
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from scalelab.device import pick_device, threads_per_worker
from scalelab.errors import ScalelabError, SearchError
from scalelab.search.budget import parse_budget
from scalelab.search.config import StudyConfig
from scalelab.search.halving import PAUSED_ATTR, HalvingPruner, wait_at_rung
from scalelab.search.record import Status, read_record
from scalelab.search.retry import TRANSIENT, with_retry
from scalelab.search.storage import MAX_RETRY, open_storage
from scalelab.search.study import LIVE, load, point_of, read_config, replicate_of
from scalelab.search.trial import Objective, StorageLost, TrialPaused
from scalelab.signals import SignalStop
from scalelab.units import si

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STORAGE_OUTAGE_S = 120.0
"""How long a worker waits out an unreachable storage between trials before it gives up."""


def work(url: str, study_name: str, *, device: str = "auto", progress: bool = True, worker: int = 0,
         data_dir: str | None = None) -> int:
    """Run trials of the study until it is done; returns how many this worker ran. ``data_dir`` says
    where the study's dataset lies on this machine, when not where the study says."""
    config = read_config(load(open_storage(url, create=False), study_name))
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    storage = open_storage(url, create=False, heartbeat_s=config.heartbeat_s)

    def start() -> tuple[optuna.Study, Objective]:
        study = load(storage, study_name)
        kind = config.study_kind
        # The seed mixes in the worker index and the trials already made, so that parallel workers and
        # resumed runs do not propose the same first networks again.
        seed = int(np.random.SeedSequence([config.train.seed, worker, len(study.get_trials(deepcopy=False))])
                   .generate_state(1)[0])
        study.sampler = kind.sampler(seed)
        study.pruner = kind.pruner(config)
        return study, Objective.for_study(study, storage, config, pick_device(device), progress=progress)

    study, objective = with_retry(start, within_s=STORAGE_OUTAGE_S)  # a server restarting as the worker starts
    return _Worker(study, storage, objective, config, progress).run()


def run_workers(url: str, study_name: str, workers: int, *, device: str = "auto", progress: bool = True) -> None:
    """``workers`` processes on this machine (or this process alone when 1) work on the study.

    An interrupt (Ctrl-C, or SIGTERM turned into one by the CLI) is passed on to every worker, which
    queues its trial again and exits. A worker killed outright (SIGKILL, out of memory) is survived: its
    trial goes stale and is re-run by the others, or by this process once they are done."""
    if workers == 1:
        work(url, study_name, device=device, progress=progress)
        return
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    threads = threads_per_worker(workers)
    procs = [ctx.Process(target=_worker_process, args=(url, study_name, device, progress, i, threads),
                         name=f"scalelab-worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)  # the terminal may have sent one already; workers ignore a second
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
        raise
    errors = [p.name for p in procs if p.exitcode and p.exitcode > 0]
    if errors:
        raise SearchError(f"{', '.join(errors)} stopped with an error (its message is above); fix it and re-run "
                          "the command to resume the study")
    killed = [f"{p.name} (signal {-p.exitcode})" for p in procs if p.exitcode and p.exitcode < 0]
    if killed:
        print(f"[{study_name}] warning: {', '.join(killed)} was killed; finishing its work in this process",
              file=sys.stderr, flush=True)
        work(url, study_name, device=device, progress=progress)


def _worker_process(url: str, study_name: str, device: str, progress: bool, index: int, threads: int) -> None:
    atexit.register(gc.freeze)  # as the command line does: no second of final garbage collection at exit
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    SignalStop()  # SIGTERM stops a worker as Ctrl-C does
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
        self.kind = config.study_kind
        self.total = self.kind.total(config, objective.plan)
        self.walls: list[float] = []  # wall seconds of the trials this worker ran
        self.claimed: int | None = None  # id of the trial this worker set RUNNING, until it is told
        self.budget = parse_budget(config.budget) if config.budget is not None else None
        self.budget_told = False

    def run(self) -> int:
        ran = 0
        while True:
            try:
                trial = with_retry(self._step, within_s=STORAGE_OUTAGE_S)
                if trial is not None:
                    self._run(trial)
                    ran += 1
            except KeyboardInterrupt:
                self._release_claim()
                raise
            self.claimed = None
            if trial is not None:
                continue
            if with_retry(lambda: self._count((TrialState.RUNNING,)), within_s=STORAGE_OUTAGE_S):
                time.sleep(min(5.0, self.config.heartbeat_s))
            elif not with_retry(self._judge_waiting, within_s=STORAGE_OUTAGE_S):
                return ran

    def _step(self) -> optuna.Trial | None:
        with _quiet():
            optuna.storages.fail_stale_trials(self.study)
        if self.budget is not None and not self.budget.allows_another(self.study):
            if not self.budget_told:
                self._say(f"budget {self.budget.text} reached: starting no more trials")
                self.budget_told = True
            return None
        return self._next()

    def _next(self) -> optuna.Trial | None:
        if self.kind.enumerated:
            return self._pop()
        failed = self._count((TrialState.FAIL,))
        if self._count(FINISHED + (TrialState.RUNNING,)) + failed // (MAX_RETRY + 1) >= self.total:
            return None  # a sampled network that failed MAX_RETRY + 1 times uses up one trial of the budget
        with _quiet():
            trial = self.study.ask()  # takes a queued (retried) trial first, else samples a new network
        self.claimed = self._id(trial.number)
        self.storage.record_heartbeat(self.claimed)
        return trial

    def _pop(self) -> optuna.Trial | None:
        """Claim a queued trial. Its heartbeat is recorded before the claim, so a worker dying right after
        claiming still leaves a heartbeat that goes stale (a trial without one is never judged stale)."""
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            if frozen.user_attrs.get(PAUSED_ATTR) is not None:
                continue  # waits until its rung is judged
            trial_id = self._id(frozen.number)
            self.storage.record_heartbeat(trial_id)
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            self.claimed = trial_id
            if self._first_of_its_point(frozen):
                return optuna.Trial(self.study, trial_id)
            self.storage.set_trial_user_attr(trial_id, "reason", "a copy queued twice by commands started together; "
                                                                 "the earlier copy trains this point")
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)  # never retried: not the point's own
        return None

    def _first_of_its_point(self, claimed: optuna.trial.FrozenTrial) -> bool:
        """Whether the claimed trial is the lowest-numbered live trial of its (point, replicate). Commands
        started together may both queue a point; deciding by the lowest number (waiting trials included)
        means exactly one copy ever trains, whatever the order in which workers claim them."""
        key = (point_of(claimed), replicate_of(claimed))
        live = self.study.get_trials(deepcopy=False, states=LIVE)
        return min(t.number for t in live if (point_of(t), replicate_of(t)) == key) == claimed.number

    def _run(self, trial: optuna.Trial) -> None:
        trial_id = self._id(trial.number)
        beat = _Heartbeat(self.storage, trial_id, self.config.heartbeat_s)
        self.objective.check_alive = beat.check
        within = beat.grace_s  # past it, other workers judge the trial dead: retrying longer is pointless
        try:
            with beat:
                try:
                    values = self.objective(trial)
                except (StorageLost, *TRANSIENT) as exc:
                    self._say(f"trial {trial.number}: lost the storage ({exc}); it will be re-run")
                    return
                except optuna.TrialPruned:
                    with_retry(lambda: self.study.tell(trial, state=TrialState.PRUNED), within_s=within)
                except TrialPaused as paused:
                    with_retry(lambda: wait_at_rung(self.storage, trial_id, paused.rung), within_s=within)
                except KeyboardInterrupt:  # further signals are ignored (SignalStop) while requeueing
                    self._fail(trial, trial_id, within)
                    raise
                except Exception as exc:  # an error in this trial: failed, queued again up to MAX_RETRY times
                    self._fail(trial, trial_id, within)
                    self._say(f"trial {trial.number} failed ({type(exc).__name__}: {exc}); "
                              f"it is queued again at most {MAX_RETRY} times")
                    return
                else:
                    with_retry(lambda: self.study.tell(trial, values), within_s=within)
        except optuna.exceptions.UpdateFinishedTrialError:
            self._say(f"trial {trial.number}: another worker judged it dead (no heartbeat for "
                      f"{3 * self.config.heartbeat_s} s) and queued it again; this result is dropped")
            return
        self._report(with_retry(lambda: self.storage.get_trial(trial_id), within_s=STORAGE_OUTAGE_S))

    def _judge_waiting(self) -> bool:
        """Synchronous halving, once no trial trains: judge the trials waiting at a rung; whether any were."""
        pruner = self.study.pruner
        if not isinstance(pruner, HalvingPruner) or self.budget_told:
            return False
        found = pruner.judge_waiting(self.study, self.objective.checkpoints)
        if found:
            go = [d.trial for d in found if d.promoted]
            self._say(f"halving at epoch {found[0].rung}: {len(found)} trial(s) judged, {len(go)} go on"
                      + (f" (trials {', '.join(map(str, go))})" if go else ""))
        return bool(found)

    def _release_claim(self) -> None:
        """An interrupt between claiming a trial and training it (or after, before it was told) leaves it
        RUNNING: fail it and queue it again, as an interrupted trial is (signals are ignored meanwhile)."""
        if self.claimed is not None and self.storage.get_trial(self.claimed).state == TrialState.RUNNING:
            self.storage.set_trial_state_values(self.claimed, TrialState.FAIL)
            self._requeue(self.claimed)

    def _fail(self, trial: optuna.Trial, trial_id: int, within: float) -> None:
        with_retry(lambda: self.study.tell(trial, state=TrialState.FAIL), within_s=within)
        self._requeue(trial_id)

    def _requeue(self, trial_id: int) -> None:
        """Queue a copy of a failed trial, as Optuna does for a stale one (retry history included)."""
        with _quiet():
            RetryHeartbeatStaleTrialCallback(MAX_RETRY)(self.study, self.storage.get_trial(trial_id))

    def _report(self, t: optuna.trial.FrozenTrial) -> None:
        r = read_record(t)
        if r is None:
            return
        if r.status is Status.PAUSED:  # not a trial's time: no estimate of what is left from it
            self._say(f"trial {t.number}: {r.spec.name}: {r.reason}")
            return
        self.walls.append(r.outcome.wall_s)
        finished = self._count(FINISHED)
        head = f"trial {t.number} ({finished}/{self.total} finished{self._eta(finished)}): {r.spec.name}: "
        if not r.finished:
            self._say(head + f"{r.status.value}: {r.reason}")
        else:
            latency = f", {r.cost.latency_ms:.2f} ms batch-1 latency" if r.cost.latency_ms is not None else ""
            self._say(head + f"val acc {r.outcome.val_acc:.2%}, {si(r.cost.flops, 'multiply-adds')}{latency}, "
                             f"{r.outcome.wall_s:.1f} s")

    def _eta(self, finished: int) -> str:
        """', about 12 min left': the trials still to run at this worker's mean trial time, shared among
        the workers now running (a rough guide: later networks may be larger)."""
        left = self.total - finished
        if left <= 0 or not self.walls:
            return ""
        seconds = sum(self.walls) / len(self.walls) * left / max(1, self._count((TrialState.RUNNING,)) + 1)
        return f", about {seconds / 60:.0f} min left" if seconds >= 60 else f", about {seconds:.0f} s left"

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
    """Records the trial's heartbeat every ``interval`` seconds from a thread while the block runs.

    A beat that fails (the database restarting, a dropped connection) is retried with back-off. When no
    beat has succeeded for two intervals, :meth:`check` raises :class:`StorageLost`, so the trial stops
    cleanly before other workers, at three silent intervals, judge it dead and queue it again."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval: int) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.grace_s = 3 * interval
        self.stop = threading.Event()
        self.last_ok = time.monotonic()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        wait, retry = self.interval, 0.2
        while not self.stop.wait(wait):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except TRANSIENT:
                wait, retry = retry, min(2 * retry, self.interval / 2)  # back off, but beat before the grace ends
                continue
            self.last_ok, wait, retry = time.monotonic(), self.interval, 0.2

    def check(self) -> None:
        silent = time.monotonic() - self.last_ok
        if silent > 2 * self.interval:
            raise StorageLost(f"no heartbeat reached the storage for {silent:.0f} s")

    def __enter__(self) -> _Heartbeat:
        with_retry(lambda: self.storage.record_heartbeat(self.trial_id), within_s=self.grace_s)
        self.last_ok = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
