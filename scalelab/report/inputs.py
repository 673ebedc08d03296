"""What a report is made from, checked before any page is written: the results-table columns and rows it
needs, and the settings of the analysis on its pages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab.errors import ScalelabError

COLUMNS: tuple[str, ...] = (
    "study", "kind", "trial", "status", "dimension", "depth_mult", "width_mult", "resolution_mult", "alpha", "beta",
    "gamma", "phi", "multiple", "predicted_ratio", "model", "params", "flops", "latency_ms", "val_acc", "test_acc",
    "epochs", "wall_s", "device", "dataset", "resolution_px", "curve", "spec", "best")


class ReportError(ScalelabError, ValueError):
    """The results table or a report setting cannot make a report."""


@dataclass(frozen=True)
class ReportSettings:
    """How the analysis on the pages is done.

    ``saturation_gain`` is the accuracy gain (fraction) per doubling of FLOPs below which a dimension counts
    as saturated; ``target_flops`` and ``reward_exponent`` are T and w of the baseline search's reward
    ``ACC * (FLOPS / T)^w`` (T defaults to the median FLOPs of the search's trials); ``rewards`` maps a study
    name to the (T, w) that search itself used, and wins over both; ``judged_levels`` maps a study to the
    level it judged its question at (a grid's winner: 95% where absent; a settling sweep's compound verdicts:
    ``level`` where absent); ``max_curves`` caps the training curves drawn
    per study.
    """

    n_bootstrap: int = 200
    level: float = 0.95
    saturation_gain: float = 0.005
    target_flops: float | None = None
    reward_exponent: float = -0.07
    rewards: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    judged_levels: Mapping[str, float] = field(default_factory=dict)
    max_curves: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.n_bootstrap) != self.n_bootstrap or self.n_bootstrap < 1:
            raise ReportError(f"n_bootstrap must be a positive integer (bands need replicates); got {self.n_bootstrap}")
        if not 0 < self.level < 1:
            raise ReportError(f"confidence level must be between 0 and 1 (e.g. 0.95); got {self.level}")
        if not 0 < self.saturation_gain < 1:
            raise ReportError(f"saturation gain is an accuracy fraction in (0, 1), e.g. 0.005 for half a "
                              f"point; got {self.saturation_gain}")
        if self.target_flops is not None and not (math.isfinite(self.target_flops) and self.target_flops > 0):
            raise ReportError(f"target FLOPs T must be a positive number of multiply-adds; got {self.target_flops}")
        if not math.isfinite(self.reward_exponent):
            raise ReportError(f"reward exponent w must be a finite number (e.g. -0.07); got {self.reward_exponent}")
        if int(self.max_curves) != self.max_curves or self.max_curves < 1:
            raise ReportError(f"max_curves must be a positive integer; got {self.max_curves}")


def check_results(df: pd.DataFrame) -> None:
    """Raise :class:`ReportError` unless ``df`` has the results-table columns and usable rows."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ReportError(f"results table lacks column(s) {', '.join(missing)}; build it with "
                          "scalelab.analysis.results.results_table")
    if not (df["status"] == "complete").any():
        raise ReportError("the results table has no finished trials; run a study before making a report")
    df = df[df["status"] == "complete"]
    acc, cost = df["val_acc"].to_numpy(float), df["flops"].to_numpy(float)
    bad = ~(np.isfinite(acc) & (acc >= 0) & (acc <= 1)) | ~(np.isfinite(cost) & (cost > 0))
    if bad.any():
        row = df[bad].iloc[0]
        raise ReportError(f"trial {row['trial']} of study '{row['study']}' has val_acc {row['val_acc']} and flops "
                          f"{row['flops']}; val_acc must be a fraction in [0, 1] and flops positive")
