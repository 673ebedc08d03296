"""The seed-to-seed spread of a study's networks and the intervals it gives their mean accuracies.

A network's few replicates measure its own spread badly: two seeds that happen to score the same give a
zero-width interval, as if its accuracy were known exactly. The spread is therefore pooled over every
network of the study with two or more replicates (one-way analysis of variance: the networks may differ in
mean, not in seed noise), with ``sum(n_i - 1)`` degrees of freedom, and each network's interval is its mean
plus or minus the t quantile times ``spread / sqrt(n_i)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special


def pooled_spread(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """(standard deviation, degrees of freedom) of the values about their own group's mean, pooled over
    the groups with two or more values; (0.0, 0) where no group has two."""
    within = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    df = sum(len(g) - 1 for g in within)
    if df == 0:
        return 0.0, 0
    return math.sqrt(sum(float(np.sum((g - g.mean()) ** 2)) for g in within) / df), df


def mean_intervals(groups: Sequence[Sequence[float]], level: float = 0.95) -> list[tuple[float, float] | None]:
    """The two-sided t interval at ``level`` of each group's mean from the pooled spread, clipped to
    [0, 1] (accuracies are fractions); None for a group with one value, whose seed noise is not measured."""
    sd, df = pooled_spread(groups)
    t = float(special.stdtrit(df, 0.5 + level / 2)) if df else math.nan
    out: list[tuple[float, float] | None] = []
    for g in groups:
        if len(g) < 2:
            out.append(None)
            continue
        mean, half = float(np.mean(g)), t * sd / math.sqrt(len(g))
        out.append((max(0.0, mean - half), min(1.0, mean + half)))
    return out
