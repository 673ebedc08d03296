"""A budget for a whole study (``--budget 60m``, ``--budget 200 epochs``): workers start no trial that
would take the study past it.

The budget counts what the study's trials have used, read from the storage, so it holds across
resumes and across workers joining from other machines: trial time (each trial's wall seconds from
start to end, summed over trials, so two workers spend a 60-minute budget in about 30 minutes), or
trial-epochs (the epochs each trial trained, fractional under an image cap; a running trial counts the
evaluations it has reported). A trial is started only while what is spent plus one more trial (the mean of the trials
finished so far) stays within the budget. Queued trials left over stay queued: a re-run with a larger
budget goes on from there.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from scalelab.errors import SearchError
from scalelab.search.record import read_record

_SECONDS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_FORM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|epochs?)\s*$")


@dataclass(frozen=True)
class Budget:
    """``amount`` of trial seconds (``unit`` 's') or trial-epochs (``unit`` 'epochs'); ``text`` as given."""

    amount: float
    unit: str
    text: str

    def spent(self, trials: list[FrozenTrial], now: datetime.datetime) -> tuple[float, float | None]:
        """What the study's trials used, and the mean of its finished trials (None before one finished)."""
        used = [(self.used(t, now), t.state in (TrialState.COMPLETE, TrialState.PRUNED)) for t in trials
                if t.datetime_start is not None]
        finished = [u for u, done in used if done]
        return sum(u for u, _ in used), (sum(finished) / len(finished) if finished else None)

    def allows_another(self, study: optuna.Study) -> bool:
        spent, per_trial = self.spent(study.get_trials(deepcopy=False), _now())
        return spent + (per_trial or 0.0) <= self.amount

    def describe(self, value: float) -> str:
        return f"{value / 60:.1f} min" if self.unit == "s" else f"{value:.3g} trial-epochs"

    def used(self, t: FrozenTrial, now: datetime.datetime) -> float:
        """What trial ``t`` used: its wall seconds (until ``now`` while it runs) or its trial-epochs."""
        if self.unit == "s":
            return ((t.datetime_complete or now) - t.datetime_start).total_seconds()
        record = read_record(t)
        if record is not None:
            return record.outcome.epochs  # what it trained, a fraction of an epoch under an image cap
        return float(len(t.intermediate_values))  # running: one evaluation per epoch so far


def parse_budget(text: str) -> Budget:
    """'60m', '1.5h', '900s' (trial time) or '200 epochs' (trial-epochs)."""
    match = _FORM.match(text)
    if not match or float(match[1]) <= 0:
        raise SearchError(f"--budget must be a positive time (60m, 1.5h, 900s) or trial-epochs (200 epochs), "
                          f"got {text!r}")
    amount, unit = float(match[1]), match[2]
    if unit.startswith("epoch"):
        return Budget(amount, "epochs", text)
    return Budget(amount * _SECONDS[unit], "s", text)


def trials_within(budget: Budget, costs: list[float]) -> int:
    """How many trials, run in the order of ``costs`` (each trial's seconds or epochs, in the budget's
    unit), the budget lets start: as a worker decides, one more while spent plus the mean so far fits."""
    spent = 0.0
    for i, cost in enumerate(costs):
        if spent + (spent / i if i else 0.0) > budget.amount:
            return i
        spent += cost
    return len(costs)


MAX_SEEDS = 20
"""The most seeds a budget is filled with: past this, more replicates narrow an interval by little."""


def seeds_within(budget: Budget, per_network: list[float], at_least: int = 1) -> int:
    """The most seeds (``at_least`` to :data:`MAX_SEEDS`) such that every trial of that many, run seed
    by seed (``per_network``: one trial's cost of each network, in the budget's unit), starts within it."""
    seeds = at_least
    while seeds < MAX_SEEDS and trials_within(budget, per_network * (seeds + 1)) == len(per_network) * (seeds + 1):
        seeds += 1
    return seeds


def summary_line(study: optuna.Study, budget: Budget, left: int) -> str:
    """How much of the budget the study used and, when ``left`` trials of it were never finished, that
    the budget stopped it."""
    spent, _ = budget.spent(study.get_trials(deepcopy=False), _now())
    told = f"Budget {budget.text}: {budget.describe(spent)} used of {budget.describe(budget.amount)}"
    if left <= 0:
        return told
    return f"{told}; {left} trial(s) not run: re-run with a larger --budget to train them"


def _now() -> datetime.datetime:
    return datetime.datetime.now()  # Optuna stores naive local times
