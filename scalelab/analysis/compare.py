"""Answers a scaling study gives from its results table: a fitted accuracy-versus-FLOPs curve per scaling
dimension, compound scaling against each single dimension at equal FLOPs, and the accuracy-FLOPs
Pareto front (the search reward ``ACC * (FLOPS / T)^w`` is :func:`scalelab.search.targets.reward`).

Accuracies are the ``val_acc`` column: the validation split held out from the training data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalelab.analysis.fit import Fit, FitError
from scalelab.analysis.fit_select import DEFAULT_FORMS, compare_at_equal_compute, select_form

SINGLE_DIMENSIONS: tuple[str, ...] = ("width", "depth", "resolution")
DIMENSIONS: tuple[str, ...] = (*SINGLE_DIMENSIONS, "compound")
SATURATING_FORMS: tuple[str, ...] = ("pow3", "pow4", "mmf4")
"""Forms with a floor, so that a fitted curve levels off and 'where it saturates' has an answer."""


@dataclass(frozen=True, eq=False)
class DimensionFit:
    """Trials of one scaling dimension and the curve :func:`select_form` chose for them.

    ``fit`` is None when the points cannot carry a curve; ``note`` then says why.
    """

    dimension: str
    points: pd.DataFrame
    fit: Fit | None
    note: str = ""


def dimension_points(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Trials per scaling dimension, sorted by FLOPs, in :data:`DIMENSIONS` order.

    A trial without a dimension at depth, width and resolution multipliers of 1 is the unscaled baseline and starts every series.
    """
    unscaled = df[df["dimension"].isna() & np.isclose(df["depth_mult"], 1) & np.isclose(df["width_mult"], 1)
                  & np.isclose(df["resolution_mult"], 1)]
    out = {}
    for dim in DIMENSIONS:
        own = df[df["dimension"] == dim]
        if not own.empty:
            out[dim] = pd.concat([unscaled, own]).sort_values("flops", kind="stable")
    return out


def fit_dimensions(df: pd.DataFrame, *, n_bootstrap: int = 200, level: float = 0.95,
                   seed: int = 0) -> dict[str, DimensionFit]:
    """Validation accuracy against FLOPs, fitted per dimension with the form :func:`select_form` picks.

    The question is where a dimension saturates, so the candidates are first the forms with a floor
    (an irreducible error); only a dimension with too few FLOPs values for any of them (three or fewer)
    falls back to all forms, whose simplest one (pow2) has no ceiling.
    """
    fits = {}
    for dim, points in dimension_points(df).items():
        flops, acc = points["flops"].to_numpy(float), points["val_acc"].to_numpy(float)
        try:
            fit = _select(flops, acc, SATURATING_FORMS, n_bootstrap, level, seed)
        except FitError:
            try:
                fit = _select(flops, acc, DEFAULT_FORMS, n_bootstrap, level, seed)
            except FitError as exc:
                fits[dim] = DimensionFit(dim, points, None, str(exc))
                continue
        fits[dim] = DimensionFit(dim, points, fit)
    return fits


def _select(flops: np.ndarray, acc: np.ndarray, forms: tuple[str, ...], n_bootstrap: int, level: float,
            seed: int) -> Fit:
    fit, _ = select_form(flops, acc, forms, metric="accuracy", n_bootstrap=n_bootstrap, level=level, seed=seed)
    return fit


def compound_vs_single(fits: dict[str, DimensionFit], *, level: float = 0.95, n_grid: int = 25) -> pd.DataFrame:
    """Compound minus each single dimension in fitted validation accuracy, on a log grid of FLOPs.

    The grid spans the FLOPs both curves were fitted on, so no answer is an extrapolation. Columns:
    dimension, flops, compound, single, diff, lower, upper (interval on diff at ``level``) and
    p_compound_better (share of bootstrap pairs in which compound is more accurate). Empty when there is no
    fitted compound curve or no overlap.
    """
    compound = fits.get("compound")
    tables = []
    for dim in SINGLE_DIMENSIONS:
        single = fits.get(dim)
        if compound is None or compound.fit is None or single is None or single.fit is None:
            continue
        lo = max(compound.fit.c_range[0], single.fit.c_range[0])
        hi = min(compound.fit.c_range[1], single.fit.c_range[1])
        if hi <= lo:
            continue
        table = compare_at_equal_compute(compound.fit, single.fit, np.geomspace(lo, hi, n_grid), level)
        tables.append(table.rename(columns=dict(compute="flops", a="compound", b="single",
                                                p_a_better="p_compound_better")).assign(dimension=dim))
    columns = ["dimension", "flops", "compound", "single", "diff", "lower", "upper", "p_compound_better"]
    return pd.concat(tables)[columns].reset_index(drop=True) if tables else pd.DataFrame(columns=columns)


def pareto_front(flops: ArrayLike, accuracy: ArrayLike) -> np.ndarray:
    """Mask of points no other point beats: none has fewer or equal FLOPs and higher or equal accuracy
    with at least one of the two strictly better."""
    f, a = np.asarray(flops, dtype=float), np.asarray(accuracy, dtype=float)
    no_worse = (f[None, :] <= f[:, None]) & (a[None, :] >= a[:, None])
    better = (f[None, :] < f[:, None]) | (a[None, :] > a[:, None])
    return ~np.any(no_worse & better, axis=1)
