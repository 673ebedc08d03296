"""Is a study's best network more accurate than every other one, or is the top a tie?

Replicate ``k`` of every network trains with the same seed, so the seeds are blocks: accuracies are
modelled as network effect + seed effect + noise (a seed that favours every network cancels out of every
difference), fitted by least squares to every finished trial, so that networks with different numbers of
seeds (stopped by successive halving, or failed) are still compared on the seeds they share with the
rest. The noise variance is pooled over all trials (``trials - networks - seeds + 1`` degrees of freedom
when every network has every seed: three seeds of nine networks give 16, where one pair's three
differences alone would give 2). Each difference
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
    ``interval`` that interval (None where the trials measure no spread, or do not link the two through
    shared seeds); ``seeds`` the fewer of the two networks' seeds; ``detectable`` the difference it
    would detect with :data:`POWER` power;
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
            return (f"Not settled: too few seeds to measure the seed-to-seed spread or to compare the best with "
                    f"{rival}; finish 3 or more seeds of each network (seeds = 3; replicates stopped early, by "
                    "halving or pruning, do not count)")
        lo, hi = self.interval
        told = (f"best minus it: {100 * self.difference:+.2f} points, {100 * lo:+.2f} to {100 * hi:+.2f} at "
                f"{100 * self.level:.3g}% simultaneous over {self.comparisons} comparison(s), {self.seeds} seeds")
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
    fit = _Blocks([best, *rivals], accuracy)
    pairs = {n: fit.difference(0, i + 1) for i, n in enumerate(rivals)}
    unknown = [n for n, p in pairs.items() if p is None]
    if fit.df < 1 or unknown:
        rival = unknown[0] if unknown else max(rivals, key=lambda n: fit.mean(n))
        diff = fit.mean(best) - fit.mean(rival)
        return Separation(best, rival, diff, None, False, level, m, fit.seeds(best, rival), None, None)
    t = float(special.stdtrit(fit.df, 0.5 + each / 2))
    lower = {n: p[0] - t * p[1] for n, p in pairs.items() if p is not None}
    rival = min(lower, key=lambda n: lower[n])
    diff, se = pairs[rival]  # type: ignore[misc]
    separated = all(v > 0 for v in lower.values())
    n = fit.seeds(best, rival)
    detectable = float((t + special.stdtrit(fit.df, POWER)) * se)
    needed = None
    if not separated and diff > 0 and fit.sd > 0:
        needed = next((k for k in range(n + 1, MAX_SEEDS + 1)
                       if _detectable(fit.sd, k, len(accuracy), each) <= diff), None)
    return Separation(best, rival, diff, (diff - t * se, diff + t * se), separated, level, m, n, detectable, needed)


class _Blocks:
    """Least-squares fit of accuracy = network effect + seed effect + noise to every trial."""

    def __init__(self, names: list[str], accuracy: dict[str, dict[int, float]]) -> None:
        self.names, self.accuracy = names, accuracy
        seeds = sorted({k for n in names for k in accuracy[n]})
        rows, y = [], []
        for a, name in enumerate(names):
            for k, acc in accuracy[name].items():
                row = np.zeros(len(names) + len(seeds) - 1)
                row[a] = 1.0
                if k != seeds[0]:
                    row[len(names) + seeds.index(k) - 1] = 1.0
                rows.append(row)
                y.append(acc)
        x, self.y = np.array(rows), np.array(y)
        self.gram = x.T @ x
        self.inverse = np.linalg.pinv(self.gram)
        self.beta = self.inverse @ x.T @ self.y
        self.df = len(y) - int(np.linalg.matrix_rank(x))
        rss = float(((self.y - x @ self.beta) ** 2).sum())
        self.sd = math.sqrt(rss / self.df) if self.df > 0 else 0.0  # of one trial, seed effects removed

    def difference(self, a: int, b: int) -> tuple[float, float] | None:
        """Effect of network ``a`` minus network ``b`` and its standard error; None when the trials do not
        link the two through shared seeds (the difference is not estimable)."""
        c = np.zeros(len(self.beta))
        c[a], c[b] = 1.0, -1.0
        if not np.allclose(self.gram @ self.inverse @ c, c, atol=1e-8):
            return None
        return float(c @ self.beta), self.sd * math.sqrt(max(float(c @ self.inverse @ c), 0.0))

    def mean(self, name: str) -> float:
        return float(np.mean(list(self.accuracy[name].values())))

    def seeds(self, a: str, b: str) -> int:
        return min(len(self.accuracy[a]), len(self.accuracy[b]))


def _detectable(sd: float, seeds: int, networks: int, level: float) -> float:
    """The true difference between two of ``networks`` that ``seeds`` seeds each (every network with every
    seed) detect with :data:`POWER` power, at a noise of ``sd`` per trial."""
    df = (networks - 1) * (seeds - 1)
    return float((special.stdtrit(df, 0.5 + level / 2) + special.stdtrit(df, POWER)) * sd * math.sqrt(2 / seeds))
