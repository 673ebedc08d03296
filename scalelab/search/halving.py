"""Multi-fidelity for enumerated studies: asynchronous successive halving (as ASHA, Li et al. 2020) over
the study's networks, with rungs in epochs and promotion judged on each network's *predicted* accuracy at
the end of its budget.

Rungs sit at ``min_epochs * rate**k`` epochs, below the trial's budget. A trial reaching a rung is scored
by its predicted accuracy at the end of its budget, with its interval at ``level``: once
:data:`~scalelab.analysis.peers.MIN_PEERS` trials of the study have finished, from its accuracy now and the
ratios of error (end / this rung) their curves showed (:mod:`scalelab.analysis.peers`: they ran the same
schedule, so they carry its annealed end); before that, with at least :data:`MIN_FIT_POINTS` evaluations,
by extrapolating its own validation curve with a power law (:data:`FORMS`, fitted by
:func:`scalelab.analysis.fit_select.select_form`); with fewer, by the accuracy it has (an interval of
zero width). Replicates (seeds) of one network are judged together: a network's score at a
rung is the mean over its replicates that reached it, its upper end the mean of theirs or, once some
network has two replicates there, the t bound the seed-to-seed spread puts on that mean
(:func:`network_bounds`), whichever is higher. A trial goes on
while its network's upper end reaches the score of the best ``1/rate`` of the networks that reached that
rung (its own included), or while fewer than ``rate`` networks have reached it, so that a network is
stopped only when even its optimistic prediction falls short, and one unlucky seed does not stop a
network whose other seeds lead (nor one lucky seed carry a network whose others trail).

Asynchronous halving promotes the first ``rate`` networks at every rung unjudged, so with one worker they
train to the end whatever they score. Synchronous halving (``synchronous``) judges every network: a trial
reaching a rung saves its training state (:mod:`scalelab.checkpoint`) and waits in the queue; once no
trial trains, :func:`judge_rung` judges the rung (the same scores and rule, every network present) and
the promoted trials go on from their checkpoints, exactly as if they had not stopped.

Every decision (rung, score, interval, threshold, how many networks reached the rung, promoted or stopped)
is kept in the trial's system attributes (``halving:<epochs>``): :func:`decisions` reads them back for
the summary and the report.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from scalelab.analysis.replicates import pooled_spread
from scalelab.errors import SearchError
from scalelab.search.kinds.enumerated import POINT_ATTR, REPLICATE_ATTR
from scalelab.search.record import Status, TrialRecord, read_record, write_record
from scalelab.search.storage import sqlite_file

MIN_FIT_POINTS = 4
"""Evaluations a curve needs before it is extrapolated (the fitter holds a stretch of it out)."""
ATTR_PREFIX = "halving:"
PAUSED_ATTR = "halving_waits_at"
"""User attribute of a trial waiting at a rung of synchronous halving (Optuna state WAITING, but not to be
taken by a worker): the rung, in epochs; None once the rung is judged and the trial promoted."""
CHECKPOINT_ENV = "SCALELAB_CHECKPOINT_DIR"
FORMS = ("pow3",)
"""The curve form a network's own learning curve is extrapolated with. On this project's real curves
(27 CIFAR-10 curves of 9 epochs: fitted on the first 5, predicting epoch 9) the power law E + A x^-a
missed the final accuracy by 2.4 points on average with its 95% interval holding it 89% of the time;
:func:`select_form` choosing among all forms missed by 4.4 points (85%), the last value by 5.5 (74%)."""


@dataclass(frozen=True)
class HalvingSettings:
    """``[halving]`` of a study file: ``enabled`` turns successive halving on for an enumerated study;
    ``rate`` is the reduction factor (the best 1/rate go on at each rung); ``min_epochs`` the first rung;
    ``level`` the confidence of the interval that must fall short of the threshold to stop a network;
    ``synchronous``: every network waits at a rung (its training state saved) until all have reached it."""

    enabled: bool = False
    rate: int = 3
    min_epochs: int = 1
    level: float = 0.95
    synchronous: bool = False

    def __post_init__(self) -> None:
        if self.rate < 2:
            raise SearchError(f"halving rate must be a whole number >= 2, got {self.rate}")
        if self.min_epochs < 1:
            raise SearchError(f"halving min_epochs must be a whole number >= 1, got {self.min_epochs}")
        if not 0 < self.level < 1:
            raise SearchError(f"halving level must be in (0, 1), got {self.level}")
        if self.synchronous and not self.enabled:
            raise SearchError("synchronous halving needs halving itself on: add --halving (enabled = true)")

    def rungs(self, budget_epochs: float) -> list[int]:
        """Epochs at which a trial is judged: every rung below the budget."""
        out, epochs = [], self.min_epochs
        while epochs < budget_epochs:
            out.append(epochs)
            epochs *= self.rate
        return out

    def expected_share(self, networks: int, budget_epochs: float) -> float:
        """The share of full training successive halving is expected to leave over ``networks`` networks:
        every network trains to the first rung, then at each rung the best 1/rate go on to the next, never
        fewer than ``rate`` (the first ``rate`` to reach a rung are promoted before any is compared), the
        last to ``budget_epochs``. (On this project's CIFAR-10 grid, 7 networks at rate 3 over 9 epochs:
        31 trial-epochs expected, 30.9 trained.) Synchronous halving judges every network, so the best
        ``ceil(n / rate)`` of ``n`` go on, at least one: 19 trial-epochs on that grid."""
        if networks < 1 or budget_epochs <= 0:
            return 1.0
        total, going, reached = 0.0, float(networks), 0.0
        for k, mark in enumerate([*self.rungs(budget_epochs), budget_epochs]):
            total += going * (mark - reached)
            reached = mark
            if self.synchronous:
                going = math.ceil(going / self.rate)
            else:
                going = min(networks, max(self.rate, networks / self.rate ** (k + 1)))
        return total / (networks * budget_epochs)


@dataclass(frozen=True)
class Decision:
    """One trial judged at one rung."""

    trial: int
    rung: int
    score: float
    lower: float
    upper: float
    extrapolated: bool
    threshold: float | None
    reached: int
    rate: int
    promoted: bool
    network_score: float | None = None
    """Mean score of the trial's network over its replicates at this rung (None: judged alone, as before
    replicates were pooled)."""
    network_upper: float | None = None
    replicates: int = 1
    peers: int = 0
    """Finished trials whose curves gave the prediction (0: the trial's own curve, or its accuracy)."""

    @property
    def why(self) -> str:
        if self.extrapolated:
            source = f"the curves of {self.peers} finished trials" if self.peers else "its own curve extrapolated"
            told = (f"predicted final accuracy {self.score:.1%} (interval {self.lower:.1%} to {self.upper:.1%}, "
                    f"from {source})")
        else:
            told = f"validation accuracy {self.score:.1%}"
        if self.replicates > 1 and self.network_score is not None and self.network_upper is not None:
            told += (f"; its network's mean over {self.replicates} replicates {self.network_score:.1%} (upper "
                     f"{self.network_upper:.1%})")
        if self.threshold is None:
            return (f"{told} at epoch {self.rung}; {self.reached} network(s) reached that rung, too few to "
                    "judge: promoted")
        verdict = "reaches" if self.promoted else "falls short of"
        return (f"{told} at epoch {self.rung} {verdict} {self.threshold:.1%}, the lowest score among the best "
                f"1/{self.rate} of the {self.reached} networks that reached that rung: "
                f"{'promoted' if self.promoted else 'stopped'}")


class HalvingPruner(BasePruner):
    """Optuna pruner for :class:`HalvingSettings`; steps are evaluations (epochs), as trials report them."""

    def __init__(self, settings: HalvingSettings, budget_epochs: float) -> None:
        self.settings = settings
        self.rungs = settings.rungs(budget_epochs)
        self.budget_epochs = budget_epochs
        self.last: dict[int, Decision] = {}
        """This process's latest decision per trial number."""

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.rungs or self.settings.synchronous:
            return False  # synchronous halving judges a whole rung at once: judge_waiting()
        curve = sorted(trial.intermediate_values.items())
        key = f"{ATTR_PREFIX}{step}"
        judged = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        by_peers = _peer_scorer(step, [t for t in judged if t.state == TrialState.COMPLETE and t.number != trial.number],
                                self.settings.level)
        score, lower, upper, extrapolated = _score(curve, by_peers, self.budget_epochs, self.settings.level)
        by_network: dict[Any, list[tuple[float, float]]] = {_network(trial): [(score, upper)]}
        for t in judged:
            if t.number != trial.number and key in t.system_attrs:
                if by_peers is not None and step in t.intermediate_values:
                    # every network at this rung scored through the same peers, so the scores compare
                    other, _, other_upper = by_peers(t.intermediate_values[step])
                else:
                    other, other_upper = t.system_attrs[key]["score"], t.system_attrs[key]["upper"]
                by_network.setdefault(_network(t), []).append((other, other_upper))
        means = network_bounds(by_network, self.settings.level)
        rate = self.settings.rate
        threshold = _threshold(means, rate) if len(means) >= rate else None
        network_score, network_upper = means[_network(trial)]
        promoted = threshold is None or network_upper >= threshold
        decision = Decision(trial.number, step, score, lower, upper, extrapolated, threshold, len(means), rate,
                            promoted, network_score, network_upper, len(by_network[_network(trial)]),
                            by_peers.peers if by_peers is not None else 0)
        study._storage.set_trial_system_attr(trial._trial_id, key, dataclasses.asdict(decision))
        self.last[trial.number] = decision
        return not promoted

    def judge_waiting(self, study: optuna.Study, checkpoints: Path | None) -> list[Decision]:
        """Synchronous halving: judge the lowest rung at which trials wait (see :func:`judge_rung`)."""
        return judge_rung(study, self.settings, self.budget_epochs, checkpoints)


def _score(curve: list[tuple[int, float]], by_peers: _PeerScorer | None, budget_epochs: float,
           level: float) -> tuple[float, float, float, bool]:
    """A trial's score at the rung its ``curve`` ends at (score, lower, upper, extrapolated): through
    finished peers when there are enough of them, else from its own curve."""
    if by_peers is not None:
        return (*by_peers(curve[-1][1]), True)
    return _own_curve_score(curve, budget_epochs, level)


def _threshold(means: dict[Any, tuple[float, float]], rate: int) -> float:
    """The lowest score among the best ``1/rate`` of the networks (by :func:`network_bounds`' score)."""
    scores = sorted((m for m, _ in means.values()), reverse=True)
    return scores[math.ceil(len(scores) / rate) - 1]


def wait_at_rung(storage: BaseStorage, trial_id: int, rung: int) -> None:
    """Put a trial back in the queue at ``rung``, marked so that no worker takes it before the rung is judged."""
    storage.set_trial_user_attr(trial_id, PAUSED_ATTR, rung)
    storage.set_trial_state_values(trial_id, TrialState.WAITING)


def _own_curve_score(curve: list[tuple[int, float]], budget_epochs: float,
                     level: float) -> tuple[float, float, float, bool]:
    """A trial's own curve extrapolated with :data:`FORMS` to ``budget_epochs`` (or its accuracy, with
    too few points): score, lower, upper, and whether it was extrapolated."""
    acc = float(curve[-1][1])
    if len(curve) < MIN_FIT_POINTS:
        return acc, acc, acc, False
    from scalelab.analysis.fit import FitError
    from scalelab.analysis.fit_select import select_form

    epochs = np.array([s for s, _ in curve], dtype=float)
    values = np.clip(np.array([v for _, v in curve], dtype=float), 1e-4, 1 - 1e-4)
    try:
        fit, _ = select_form(epochs, values, FORMS, metric="accuracy", horizon=budget_epochs, level=level,
                             n_bootstrap=100)
    except FitError:
        return acc, acc, acc, False
    end = np.array([budget_epochs])
    predicted = float(fit.predict(end)[0])
    lo, hi = (float(v[0]) for v in fit.band(end, level))
    low, high = sorted((lo, hi))
    return predicted, min(low, predicted), max(high, predicted, acc), True


def network_bounds(by_network: dict[Any, list[tuple[float, float]]], level: float) -> dict[Any, tuple[float, float]]:
    """Network -> (score, upper end) at a rung from its replicates' (score, upper end) pairs. The score is
    their mean; the upper end the larger of the mean of theirs and the mean's one-sided t bound at
    ``level`` from the seed-to-seed spread, pooled over every network with two or more replicates at the
    rung (a network with one replicate gets it too, at its one seed), so that a network is stopped only
    when seed noise, not only the noise of its curves, cannot explain its shortfall."""
    from scipy import special

    spread, df = pooled_spread([[s for s, _ in v] for v in by_network.values()])
    t = float(special.stdtrit(df, level)) if df >= 1 else 0.0
    out = {}
    for n, v in by_network.items():
        mean = float(np.mean([s for s, _ in v]))
        out[n] = (mean, max(float(np.mean([u for _, u in v])), mean + t * spread / math.sqrt(len(v))))
    return out


def judge_rung(study: optuna.Study, settings: HalvingSettings, budget_epochs: float,
               checkpoints: Path | None = None) -> list[Decision]:
    """Synchronous halving: once no trial is training, the trials waiting at the lowest rung are judged
    against every network that reached it (the best ``1/rate`` networks, by mean score over replicates,
    and any whose upper end reaches the lowest of theirs, go on). A promoted trial is released to be
    continued from its checkpoint; a stopped one ends pruned, its record saying why and its checkpoint
    (in ``checkpoints``) deleted. Returns the decisions (none when nothing waits). Safe to run from two
    workers at once: both reach the same decisions."""
    from scalelab.checkpoint import remove

    trials = study.get_trials(deepcopy=False)
    waiting = [t for t in trials if t.state == TrialState.WAITING and t.user_attrs.get(PAUSED_ATTR) is not None]
    if not waiting:
        return []
    rung = min(t.user_attrs[PAUSED_ATTR] for t in waiting)
    reached = [t for t in trials if rung in t.intermediate_values and t.state != TrialState.FAIL]
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    by_peers = _peer_scorer(rung, finished, settings.level)
    scored = {t.number: _score(sorted((k, v) for k, v in t.intermediate_values.items() if k <= rung), by_peers,
                               budget_epochs, settings.level) for t in reached}
    by_network: dict[Any, list[tuple[float, float]]] = {}
    for t in reached:
        by_network.setdefault(_network(t), []).append((scored[t.number][0], scored[t.number][2]))
    means = network_bounds(by_network, settings.level)
    threshold = _threshold(means, settings.rate)
    storage = study._storage
    out = []
    for t in waiting:
        if t.user_attrs[PAUSED_ATTR] != rung:
            continue
        score, lower, upper, extrapolated = scored[t.number]
        network_score, network_upper = means[_network(t)]
        decision = Decision(t.number, rung, score, lower, upper, extrapolated, threshold, len(means),
                            settings.rate, network_upper >= threshold, network_score, network_upper,
                            len(by_network[_network(t)]), by_peers.peers if by_peers is not None else 0)
        try:
            storage.set_trial_system_attr(t._trial_id, f"{ATTR_PREFIX}{rung}", dataclasses.asdict(decision))
            if decision.promoted:
                storage.set_trial_user_attr(t._trial_id, PAUSED_ATTR, None)
            else:
                record = read_record(t)
                if record is not None:
                    write_record(storage, t._trial_id, dataclasses.replace(
                        record, status=Status.PRUNED, reason=f"stopped by successive halving: {decision.why}"))
                storage.set_trial_state_values(t._trial_id, TrialState.PRUNED)
                if checkpoints is not None:
                    remove(checkpoint_path(checkpoints, t))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker judged it a moment ago, the same way
        out.append(decision)
    return out


def checkpoint_dir(url: str, study_name: str) -> Path:
    """Where synchronous halving keeps the training state of waiting trials: ``$SCALELAB_CHECKPOINT_DIR``
    (a folder every worker of the study sees) if set, else a ``checkpoints`` folder beside a SQLite storage."""
    root = os.environ.get(CHECKPOINT_ENV)
    if root is not None:
        return Path(root) / study_name
    database = sqlite_file(url)
    if database is None:
        raise SearchError(f"synchronous halving keeps the training state of waiting trials in files; set "
                          f"{CHECKPOINT_ENV} to a folder every worker sees (the storage is not a SQLite file)")
    return database.parent / "checkpoints" / study_name


def checkpoint_path(directory: Path, trial: FrozenTrial | optuna.Trial) -> Path:
    """One file per network and replicate, so a trial retried after a failure goes on from it too."""
    point = trial.user_attrs.get(POINT_ATTR)
    return directory / f"point{point}-replicate{trial.user_attrs.get(REPLICATE_ATTR, 0)}.pt"


class _PeerScorer:
    """Accuracy at a rung -> (predicted final accuracy, lower, upper), through the error ratios (end / rung)
    of ``peers`` finished trials (:func:`scalelab.analysis.peers.predict_from_peers`)."""

    def __init__(self, now: list[float], end: list[float], level: float) -> None:
        self.now, self.end, self.level, self.peers = now, end, level, len(now)

    def __call__(self, accuracy: float) -> tuple[float, float, float]:
        from scalelab.analysis.peers import predict_from_peers

        pred = predict_from_peers(max(1 - accuracy, 1e-4), self.now, self.end, self.level)
        return 1 - pred.value, 1 - pred.upper, 1 - pred.lower


def _peer_scorer(step: int, finished: list[FrozenTrial], level: float) -> _PeerScorer | None:
    """Scores through the finished trials that passed ``step`` (None: fewer than the peers needed)."""
    from scalelab.analysis.peers import MIN_PEERS

    pairs = [(1 - t.intermediate_values[step], 1 - t.intermediate_values[t.last_step]) for t in finished
             if t.last_step is not None and t.last_step > step and step in t.intermediate_values]
    pairs = [(max(a, 1e-4), max(b, 1e-4)) for a, b in pairs]
    if len(pairs) < MIN_PEERS:
        return None
    return _PeerScorer([a for a, _ in pairs], [b for _, b in pairs], level)


def _network(trial: FrozenTrial) -> Any:
    """What replicates of one network share: its plan index (a trial without one is a network of its own)."""
    point = trial.user_attrs.get(POINT_ATTR)
    return ("trial", trial.number) if point is None else point


def decisions(study: optuna.Study) -> list[Decision]:
    """Every halving decision of ``study``, by trial and rung."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING,
                                                      TrialState.FAIL, TrialState.WAITING)):
        for key, value in t.system_attrs.items():
            if key.startswith(ATTR_PREFIX):
                out.append(Decision(**value))
    return sorted(out, key=lambda d: (d.trial, d.rung))


def summary_lines(study: optuna.Study, records: list[TrialRecord]) -> tuple[list[str], dict[str, Any]]:
    """What successive halving decided, rung by rung, and the trial-epochs it saved against training
    every trial to the end."""
    found = decisions(study)
    lines, rungs = [], []
    for rung in sorted({d.rung for d in found}):
        at = [d for d in found if d.rung == rung]
        stopped = [d.trial for d in at if not d.promoted]
        rungs.append({"epochs": rung, "reached": len(at), "promoted": len(at) - len(stopped), "stopped": stopped})
        lines.append(f"Halving at epoch {rung}: {len(at)} trial(s) judged, {len(at) - len(stopped)} promoted, "
                     f"{len(stopped)} stopped" + (f" (trials {', '.join(map(str, stopped))})" if stopped else ""))
    ended = [r for r in records if r.status in (Status.COMPLETE, Status.PRUNED)]
    full = max((r.outcome.epochs for r in ended if r.status is Status.COMPLETE), default=0.0)
    used = sum(r.outcome.epochs for r in ended)
    data: dict[str, Any] = {"rungs": rungs, "trial_epochs": used, "full_trial_epochs": full * len(ended)}
    if used > 0 and full > 0:
        lines.append(f"Trial-epochs: {used:.3g} trained, against {full * len(ended):.3g} to train all {len(ended)} "
                     f"trials to the end ({full * len(ended) / used:.2g}x fewer)")
    return lines, data

