"""Is a study's best network more accurate than every other one, or is the top a tie?

The best network is compared with each other network on the replicates both have (replicate ``k`` of
every network trains with the same seed, so each difference is paired: a seed that favours every network
cancels out). Each difference gets a t interval on its own replicates, at the simultaneous level
``1 - (1 - level) / (m - 1)`` for ``m`` networks (Bonferroni). The best is *separated* when every
interval lies above zero.

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
    ``interval`` that interval (None with fewer than two shared replicates); ``seeds`` the replicates it
    is built on; ``detectable`` the difference it would detect with :data:`POWER` power;
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
            return (f"Not settled: the best and {rival} share fewer than 2 seeds, so the seed-to-seed spread is "
                    "unknown; train 3 or more seeds per network (seeds = 3)")
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
    study's best network (one of the keys)."""
    rivals = [n for n in accuracy if n != best]
    m = len(rivals)
    if not rivals:
        return Separation(best, None, 0.0, None, False, level, 0, len(accuracy[best]), None, None)
    each = 1 - (1 - level) / m
    pairs = {n: _paired(accuracy[best], accuracy[n], each) for n in rivals}
    unknown = [n for n, p in pairs.items() if p is None]
    if unknown:
        rival = unknown[0]
        diff = float(np.mean(list(accuracy[best].values())) - np.mean(list(accuracy[rival].values())))
        shared = len(set(accuracy[best]) & set(accuracy[rival]))
        return Separation(best, rival, diff, None, False, level, m, shared, None, None)
    known = {n: p for n, p in pairs.items() if p is not None}
    rival = min(known, key=lambda n: known[n].interval[0])
    pair = known[rival]
    separated = all(p.interval[0] > 0 for p in known.values())
    n = pair.df + 1
    sd = pair.se * math.sqrt(n)  # of one paired difference
    detectable = _detectable(sd, n, each)
    needed = None
    if not separated and pair.mean > 0 and sd > 0:
        needed = next((k for k in range(n + 1, MAX_SEEDS + 1) if _detectable(sd, k, each) <= pair.mean), None)
    return Separation(best, rival, pair.mean, pair.interval, separated, level, m, n, detectable, needed)


def _detectable(sd: float, n: int, level: float) -> float:
    """The true difference that ``n`` paired replicates of spread ``sd`` detect with :data:`POWER` power."""
    return float((special.stdtrit(n - 1, 0.5 + level / 2) + special.stdtrit(n - 1, POWER)) * sd / math.sqrt(n))


def _paired(a: dict[int, float], b: dict[int, float], level: float) -> _Pair | None:
    """None with fewer than two shared replicates."""
    shared = sorted(set(a) & set(b))
    if len(shared) < 2:
        return None
    d = np.array([a[k] - b[k] for k in shared])
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    half = float(special.stdtrit(len(d) - 1, 0.5 + level / 2) * se)
    mean = float(d.mean())
    return _Pair(mean, (mean - half, mean + half), se, len(d) - 1)
