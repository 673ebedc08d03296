"""Simulated sweeps that calibrate :mod:`scalelab.analysis.verdicts`: how often a study where no dimension
differs is reported as one where some dimension does (the false-positive rate), and how often a real
difference is found (the power).

Each simulated sweep is shaped like a real one: the base network plus width, depth, resolution and
compound scaling at FLOPs multiples 2, 4 (and 8), each trial's FLOPs off the planned multiple the way the
rounding of real networks puts them (:data:`MEASURED_MULTIPLES`, from the EfficientNet-B0 sweep in the test
fixtures: compound lands well above its plan), ``seeds`` replicates of every network with the same seeds
everywhere, every dimension on the same true saturating curve :func:`true_accuracy` plus Gaussian trial
noise. A true difference ``delta`` lifts compound scaling above that curve by ``delta`` at the largest
planned multiple (4 or 8 times the base), growing linearly in log FLOPs from zero at the base network,
the way two dimensions that start from one network part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scalelab.analysis.verdicts import Design, binomial_interval

SINGLE = ("width", "depth", "resolution")
MEASURED_MULTIPLES = {
    "width": (1.92, 3.71, 7.23),
    "depth": (2.03, 4.09, 8.21),
    "resolution": (2.17, 3.94, 8.59),
    "compound": (3.01, 5.17, 10.86),
}
"""Measured FLOPs / base FLOPs of the networks planned at 2, 4 and 8 times the base."""
BASE_FLOPS = 33e6


def true_accuracy(multiple: np.ndarray) -> np.ndarray:
    """The shared true curve: 78 % at the base, saturating towards 88 % (85.6 % at 8x)."""
    return 0.88 - 0.10 * np.asarray(multiple, float) ** -0.6


def steep_accuracy(multiple: np.ndarray) -> np.ndarray:
    """A shared true curve that rises steeply and then flattens, as the CIFAR-10 sweeps' width did (60 % at
    the base, 78.8 % at 2x, 84.6 % at 8x): a line or parabola in log FLOPs misses it by far more than trial
    noise of a few tenths of a point, so the verdicts compare measured networks."""
    return 0.85 - 0.25 * np.asarray(multiple, float) ** -2.0


CURVES = {"saturating": true_accuracy, "steep": steep_accuracy}
"""The true curves :func:`simulate` can put every dimension on, by name."""


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``n``, with a Clopper-Pearson interval at ``level``."""

    hits: int
    n: int
    level: float = 0.95

    @property
    def rate(self) -> float:
        return self.hits / self.n

    @property
    def interval(self) -> tuple[float, float]:
        return binomial_interval(self.hits, self.n, self.level)

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{100 * self.rate:.1f} % ({100 * lo:.1f} to {100 * hi:.1f})"


@dataclass(frozen=True)
class Scenario:
    """Rates over ``sims`` simulated sweeps with ``multiples`` FLOPs values per dimension (the base
    included) and ``seeds`` replicates, at true difference ``delta`` (compound minus every single
    dimension at the largest planned multiple).

    ``any_claim`` (null sweeps only, ``delta`` 0): sweeps in which at least one of the three verdicts
    claims a difference, the study-level false-positive rate; ``claims``: the share of single comparisons
    that do (compound against width only where ``delta`` is not 0); ``correct``: sweeps in which compound
    against width finds compound more accurate (the power);
    ``detectable``: the median of the reported smallest detectable difference, in points.
    """

    multiples: int
    seeds: int
    delta: float
    sims: int
    any_claim: Rate
    claims: Rate
    correct: Rate
    detectable: float


def simulate(*, sims: int = 400, multiples: int = 4, seeds: int = 1, delta: float = 0.0, noise: float = 0.025,
             level: float = 0.95, seed: int = 0, curve: Callable[[np.ndarray], np.ndarray] = true_accuracy) -> Scenario:
    """Run ``sims`` simulated sweeps through the verdicts (compound against each single dimension, at the
    simultaneous level the report uses); ``curve`` is the true accuracy shared by every dimension, against
    the multiple of the base network's FLOPs."""
    if multiples not in (3, 4):
        raise ValueError("multiples is 3 (1, 2, 4 times the base) or 4 (1, 2, 4, 8)")
    rng = np.random.default_rng(seed)
    n_scaled = multiples - 1
    dims = ("base", *SINGLE, "compound")
    design = {d: np.array([1.0]) if d == "base" else np.array(MEASURED_MULTIPLES[d][:n_scaled]) for d in dims}
    acc = {}  # dimension -> (networks * seeds, sims): the same draws feed every comparison of a sweep
    for d, mult in design.items():
        lift = delta * np.log(mult) / np.log(2.0**n_scaled) if d == "compound" else np.zeros_like(mult)
        mean = np.repeat(curve(mult) + lift, seeds)
        acc[d] = mean[:, None] + rng.normal(0.0, noise, (mean.size, sims))
    interval_level = 1.0 - (1.0 - level) / len(SINGLE)
    verdicts, detectable = [], None
    for single in SINGLE if delta == 0 else SINGLE[:1]:  # power is read off compound against width
        parts = ("base", single, "compound")
        flops = np.concatenate([np.repeat(design[d], seeds) * BASE_FLOPS for d in parts])
        of = {key: np.concatenate([np.full(design[d].size * seeds, d == key) for d in parts]) for key in parts}
        network = np.concatenate([np.repeat([f"{d}{i}" for i in range(design[d].size)], seeds) for d in parts])
        seed_col = np.concatenate([np.tile(np.arange(seeds, dtype=float), design[d].size) for d in parts])
        model = Design(flops, of["compound"], network, seed_col, in_b=of[single], base_flops=BASE_FLOPS)
        est = model.estimate(np.concatenate([acc[d] for d in parts]), level=interval_level)
        verdicts.append(est["verdict"])
        if detectable is None:
            detectable = est["detectable"]
    claimed = np.array(verdicts) != 0
    return Scenario(multiples, seeds, delta, sims, Rate(int(claimed.any(axis=0).sum()), sims, level),
                    Rate(int(claimed.sum()), claimed.size, level), Rate(int((verdicts[0] == 1).sum()), sims, level),
                    100 * float(np.nanmedian(detectable)))
