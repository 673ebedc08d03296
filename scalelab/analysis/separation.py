"""Is a study's best network more accurate than every other one, or is the top a tie?

Replicate ``k`` of every network trains with the same seed, so the seeds are blocks: accuracies are
modelled as network effect + seed effect + noise (a seed that favours every network cancels out of every
difference), on the seeds every network has. The noise variance is pooled over all networks and seeds,
with ``(networks - 1) (seeds - 1)`` degrees of freedom, so that three seeds of nine networks give a usable
interval where one pair's three differences alone (two degrees of freedom) would not. Each difference
``best - rival`` gets a t interval at the simultaneous level ``1 - (1 - level) / (m - 1)`` for ``m``
networks (Bonferroni). The best is *separated* when every interval lies above zero.

The best is chosen from the same data, which biases a naive test towards separation. With two-sided
intervals that bias is covered: where all networks are equally accurate, a separation needs one
particular network to beat one particular other on the upper tail, which has a chance of at most
``(1 - level) / (2 (m - 1))`` for each of the ``m (m - 1)`` ordered pairs it could come from, so of at most
``(1 - level) m / 2 / (m - 1) <= 1 - level`` in all (checked on simulated studies in the tests).

Where the best is not separated, the closest comparison (the lowest interval) says what is not known:
its interval, the smallest difference that design would detect with :data:`POWER` power, and about how
many replicates per network would make the observed difference detectable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

POWER = 0.8
"""Power at which :attr:`Separation.detectable` is stated."""
MAX_SEEDS = 1000
"""Beyond this many replicates per network, :attr:`Separation.seeds_needed` is None (not worth stating)."""


@dataclass(frozen=True)
class Separation:
    """The best network against its closest rival; accuracies and differences as fractions.

    ``closest`` is the network whose interval on ``best - closest`` reaches lowest (None with no rival);
    ``interval`` that interval (None with fewer than two seeds common to every network); ``seeds`` the
    seeds it is built on; ``detectable`` the difference it would detect with :data:`POWER` power;
    ``seeds_needed`` about how many replicates per network would detect ``difference`` (at the spread seen;
    None when separated or beyond :data:`MAX_SEEDS`)."""

    best: str
    closest: str | None
    difference: float
    interval: tuple[float, float] | None
    separated: bool
    level: float
    comparisons: int
    seeds: int
    detectable: float | None
    seeds_needed: int | None

    def text(self, name: dict[str, str] | None = None) -> str:
        """One line; ``name`` maps network names to what the study calls them (grid coefficients)."""
        if self.closest is None:
            return "Separation: only one network finished; nothing to compare the best with"
        rival = (name or {}).get(self.closest, self.closest)
        if self.interval is None or self.detectable is None:
            return ("Not settled: fewer than 2 seeds are common to every trained network, so the seed-to-seed "
                    "spread is unknown; train 3 or more seeds per network (seeds = 3)")
        lo, hi = self.interval
        told = (f"best minus it: {100 * self.difference:+.2f} points, {100 * lo:+.2f} to {100 * hi:+.2f} at "
                f"{self.level:.0%} simultaneous over {self.comparisons} comparison(s), {self.seeds} seeds")
        if self.separated:
            return f"Settled: the best is more accurate than every other network; the closest is {rival} ({told})"
        need = (f"; about {self.seeds_needed} seeds per network would detect a difference of this size"
                if self.seeds_needed is not None else "")
        return (f"Not settled: the best is not separated from {rival} ({told}); differences under "
                f"{100 * self.detectable:.2f} points could not be seen with {self.seeds} seeds{need}")


@dataclass(frozen=True)
class _Pair:
    """``best - rival`` over their shared replicates: mean, t interval, standard error, degrees of freedom."""

    mean: float
    interval: tuple[float, float]
    se: float
    df: int


def separate_best(accuracy: dict[str, dict[int, float]], best: str, *, level: float = 0.95) -> Separation:
    """``accuracy``: network -> replicate -> validation accuracy, for the finished networks; ``best``: the
    study's best network (one of the keys). Only the replicates every network has are used."""
    rivals = [n for n in accuracy if n != best]
    m = len(rivals)
    if not rivals:
        return Separation(best, None, 0.0, None, False, level, 0, len(accuracy[best]), None, None)
    each = 1 - (1 - level) / m
    names = [best, *rivals]
    blocks = sorted(set.intersection(*(set(accuracy[n]) for n in names)))
    n = len(blocks)
    if n < 2:
        means = {k: float(np.mean(list(accuracy[k].values()))) for k in names}
        rival = max(rivals, key=lambda k: means[k])
        return Separation(best, rival, means[best] - means[rival], None, False, level, m, n, None, None)
    acc = np.array([[accuracy[k][b] for b in blocks] for k in names])  # networks x seeds
    residual = acc - acc.mean(axis=1, keepdims=True) - acc.mean(axis=0, keepdims=True) + acc.mean()
    df = (len(names) - 1) * (n - 1)
    sd = math.sqrt(float((residual**2).sum()) / df)  # of one trial's accuracy, seed effects removed
    diffs = acc[0].mean() - acc[1:].mean(axis=1)
    half = float(special.stdtrit(df, 0.5 + each / 2)) * sd * math.sqrt(2 / n)
    i = int(np.argmin(diffs))
    diff = float(diffs[i])
    separated = bool(np.all(diffs - half > 0))
    detectable = _detectable(sd, n, len(names), each)
    needed = None
    if not separated and diff > 0 and sd > 0:
        needed = next((k for k in range(n + 1, MAX_SEEDS + 1) if _detectable(sd, k, len(names), each) <= diff),
                      None)
    return Separation(best, rivals[i], diff, (diff - half, diff + half), separated, level, m, n, detectable, needed)


def _detectable(sd: float, seeds: int, networks: int, level: float) -> float:
    """The true difference between two of ``networks`` that ``seeds`` seeds each detect with :data:`POWER`
    power, at a noise of ``sd`` per trial."""
    df = (networks - 1) * (seeds - 1)
    return float((special.stdtrit(df, 0.5 + level / 2) + special.stdtrit(df, POWER)) * sd * math.sqrt(2 / seeds))
