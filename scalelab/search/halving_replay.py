"""Successive halving replayed on a study trained in full (``scalelab bench halving``): what it would have
saved, and whether it would have reached the same decision, without training anything again.

Each finished trial's validation curve is reported epoch by epoch to :class:`HalvingPruner` in an
in-memory study, in the study's trial order and then in random orders (asynchronous halving depends on
which networks reach a rung first); a trial the pruner stops stops there. Counted per order: the
trial-epochs trained, whether the winner is the full study's (the network with the highest mean final
validation accuracy over its trials), and what picking it lost: the full study's best mean final accuracy
minus the replay winner's (0 where they are the same network; small where networks tie). Synchronous
halving judges every network at each rung whatever the order: it is replayed once, through
:func:`~scalelab.search.halving.judge_rung` itself.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from scalelab.errors import SearchError
from scalelab.search.halving import HalvingPruner, HalvingSettings, judge_rung, wait_at_rung
from scalelab.search.kinds.enumerated import POINT_ATTR


@dataclass(frozen=True)
class ReplayCurve:
    network: str
    accuracies: tuple[float, ...]
    """Validation accuracy (a fraction) after each epoch, the budget's last included."""


@dataclass(frozen=True)
class Replay:
    settings: HalvingSettings
    epochs: int
    trials: int
    networks: int
    winner: str
    trial_epochs: tuple[int, ...]
    """Trial-epochs trained in each order, the study's own first."""
    same_winner: tuple[bool, ...]
    loss: tuple[float, ...]
    """Per order: the full study's best mean final accuracy minus that of the replay's winner (a fraction)."""

    @property
    def full_trial_epochs(self) -> int:
        return self.epochs * self.trials

    def text(self) -> str:
        used = self.trial_epochs
        median = statistics.median(used)
        rungs = ", ".join(map(str, self.settings.rungs(self.epochs))) or "none"
        if self.settings.synchronous:
            return "\n".join([
                f"{self.trials} trials of {self.networks} networks, {self.epochs} epochs each: "
                f"{self.full_trial_epochs} trial-epochs trained in full; winner {self.winner}",
                f"synchronous successive halving (rate {self.settings.rate}, rungs at epoch {rungs}, level "
                f"{self.settings.level:g}), the same in every order:",
                f"  trial-epochs: {used[0]}, {self.full_trial_epochs / used[0]:.2f}x fewer than in full",
                f"  {'the same winner' if self.same_winner[0] else 'another winner'}; the winner halving kept was "
                f"{100 * self.loss[0]:.2f} points of final validation accuracy below the full study's best"])
        return "\n".join([
            f"{self.trials} trials of {self.networks} networks, {self.epochs} epochs each: {self.full_trial_epochs} "
            f"trial-epochs trained in full; winner {self.winner}",
            f"successive halving (rate {self.settings.rate}, rungs at epoch {rungs}, level {self.settings.level:g}) "
            f"replayed in {len(used)} orders (the study's own first):",
            f"  trial-epochs: median {median:g} ({min(used)} to {max(used)}), {self.full_trial_epochs / median:.2f}x "
            f"fewer than in full; in the study's order {used[0]} ({self.full_trial_epochs / used[0]:.2f}x)",
            f"  the same winner in {sum(self.same_winner)} of {len(used)} orders"
            f"{'' if self.same_winner[0] else ' (not in the study order)'}; the winner halving kept was "
            f"{100 * statistics.median(self.loss):.2f} points of final validation accuracy below the full study's "
            f"best in the median order, {100 * max(self.loss):.2f} at worst",
        ])


def replay(curves: list[ReplayCurve], settings: HalvingSettings, orders: int = 200, seed: int = 0) -> Replay:
    """Halving replayed over ``curves`` (one per trial, all of one length) in ``orders`` orders."""
    if len(curves) < 2:
        raise SearchError("replaying halving needs at least two finished trials")
    epochs = len(curves[0].accuracies)
    if any(len(c.accuracies) != epochs for c in curves):
        raise SearchError("replaying halving needs every trial trained for the same number of epochs; this "
                          "study's curves differ in length (was it run with --halving, or with a time budget?)")
    networks = sorted({c.network for c in curves})
    finals = _finals(curves, {i: epochs for i in range(len(curves))})
    winner = max(finals, key=lambda n: (finals[n], n))
    rng = np.random.default_rng(seed)
    sequences = [list(range(len(curves)))] + [list(rng.permutation(len(curves))) for _ in range(orders - 1)]
    if settings.synchronous:
        sequences = sequences[:1]
    used, same, loss = [], [], []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for sequence in sequences:
        trained = (_synchronous if settings.synchronous else _one_order)(curves, sequence, settings, epochs, networks)
        used.append(sum(trained.values()))
        kept = _finals(curves, trained)
        picked = max(kept, key=lambda n: (kept[n], n))
        same.append(picked == winner)
        loss.append(finals[winner] - finals[picked])
    return Replay(settings, epochs, len(curves), len(networks), winner, tuple(used), tuple(same), tuple(loss))


def _one_order(curves: list[ReplayCurve], sequence: list[int], settings: HalvingSettings, epochs: int,
               networks: list[str]) -> dict[int, int]:
    """Epochs each trial trains when the pruner judges them in ``sequence``."""
    study = optuna.create_study(direction="maximize", pruner=HalvingPruner(settings, epochs))
    trained = {}
    for i in sequence:
        trial = study.ask()
        trial.set_user_attr(POINT_ATTR, networks.index(curves[i].network))
        for step, value in enumerate(curves[i].accuracies, start=1):
            trial.report(value, step)
            if step < epochs and trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, curves[i].accuracies[-1])
        trained[i] = step
    return trained


def _synchronous(curves: list[ReplayCurve], sequence: list[int], settings: HalvingSettings, epochs: int,
                 networks: list[str]) -> dict[int, int]:
    """Epochs each trial trains under synchronous halving: all go to a rung and wait, the rung is judged,
    the promoted go on to the next."""
    study = optuna.create_study(direction="maximize")
    storage = study._storage
    trials = {}
    for i in sequence:
        trial = study.ask()
        trial.set_user_attr(POINT_ATTR, networks.index(curves[i].network))
        trials[i] = trial
    trained = dict.fromkeys(sequence, 0)
    going = list(sequence)
    for mark in [*settings.rungs(epochs), epochs]:
        for i in going:
            for step in range(trained[i] + 1, mark + 1):
                trials[i].report(curves[i].accuracies[step - 1], step)
            trained[i] = mark
            if mark < epochs:
                wait_at_rung(storage, trials[i]._trial_id, mark)
        if mark == epochs:
            break
        promoted = {d.trial for d in judge_rung(study, settings, epochs) if d.promoted}
        going = [i for i in going if trials[i].number in promoted]
        for i in going:
            storage.set_trial_state_values(trials[i]._trial_id, TrialState.RUNNING)
    return trained


def _finals(curves: list[ReplayCurve], trained: dict[int, int]) -> dict[str, float]:
    """Mean final accuracy of each network over its trials trained to the end."""
    epochs = len(curves[0].accuracies)
    finals: dict[str, list[float]] = {}
    for i, c in enumerate(curves):
        if trained[i] == epochs:
            finals.setdefault(c.network, []).append(c.accuracies[-1])
    return {n: statistics.mean(v) for n, v in finals.items()}
