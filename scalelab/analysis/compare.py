"""Answers a scaling study gives from its results table: a fitted accuracy-versus-FLOPs curve per scaling
dimension, compound scaling against each single dimension at equal FLOPs (calibrated verdicts from
:mod:`scalelab.analysis.verdicts`), and the accuracy-FLOPs
Pareto front (the search reward ``ACC * (FLOPS / T)^w`` is :func:`scalelab.search.targets.reward`).

Accuracies are the ``val_acc`` column: the validation split held out from the training data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scalelab.analysis.fit import Fit, FitError
from scalelab.analysis.fit_select import DEFAULT_FORMS, select_form
from scalelab.analysis.verdicts import Comparison, compare_dimensions
from scalelab.units import si

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


def compound_vs_single(data: pd.DataFrame | Mapping[str, DimensionFit], *, level: float = 0.95) -> pd.DataFrame:
    """Compound scaling against each single dimension at equal FLOPs, calibrated
    (:func:`scalelab.analysis.verdicts.compare_dimensions`: one linear model per pair on every replicate,
    t intervals simultaneous at ``level`` over the comparisons made).

    ``data`` is a results table of complete trials or the :func:`fit_dimensions` of one (whose points are
    used, not the curves). One row per single dimension with trials, in :data:`SINGLE_DIMENSIONS` order,
    with the fields of :class:`~scalelab.analysis.verdicts.Comparison` (``dimension`` is ``b``; ``a`` is
    compound; ``verdict`` "compound", the dimension's name, or "none" for no clear difference). Empty
    when there are no compound trials.
    """
    if isinstance(data, pd.DataFrame):
        series = dimension_points(data)
    else:
        series = {dim: item.points for dim, item in data.items()}
    singles = [dim for dim in SINGLE_DIMENSIONS if dim in series]
    columns = ["dimension", *(f.name for f in dataclasses.fields(Comparison))]
    if "compound" not in series or not singles:
        return pd.DataFrame(columns=columns)
    rows = []
    for dim in singles:
        # Each series starts with the base network's trials; the union holds them once.
        own = series[dim][series[dim]["dimension"] == dim]
        c = compare_dimensions(pd.concat([series["compound"], own]), "compound", dim, level=level,
                               comparisons=len(singles))
        verdict = {"a": "compound", "b": dim}.get(c.verdict, "none")
        rows.append({"dimension": dim, **dataclasses.asdict(c), "verdict": verdict})
    return pd.DataFrame(rows, columns=columns)


def verdict_line(c: Any) -> str:
    """One row of :func:`compound_vs_single` as a line of plain text (the report words it at length)."""
    dim = c.dimension
    if not c.answered:
        return f"Compound against {dim}: not answered ({c.note})."
    said = {"compound": "compound more accurate", dim: f"{dim} more accurate"}.get(c.verdict, "no clear difference")
    basis = "measured networks" if c.variance == "bracket" else f"{c.curve} shared curve"
    line = (f"Compound against {dim} at {si(c.flops_ref, 'multiply-adds')}: {said}; compound minus {dim} "
            f"{100 * c.diff:+.1f} points ({100 * c.lower:+.1f} to {100 * c.upper:+.1f}, {100 * c.level:g}% "
            f"simultaneous over {c.comparisons}; {c.networks} networks, up to {c.seeds} seed(s), {basis})")
    if c.verdict != "none" or c.identical:
        return line + "."
    if c.variance == "bracket":
        return line + (f"; to know: a {c.bracketed} network nearer {si(c.flops_ref, 'multiply-adds')} (resume the "
                       f"sweep with --add {c.bracketed}:K), or more seeds.")
    return line + f"; these trials could detect about {100 * c.detectable:.1f} points; more seeds narrow it."


def pareto_front(flops: ArrayLike, accuracy: ArrayLike) -> np.ndarray:
    """Mask of points no other point beats: none has fewer or equal FLOPs and higher or equal accuracy
    with at least one of the two strictly better."""
    f, a = np.asarray(flops, dtype=float), np.asarray(accuracy, dtype=float)
    no_worse = (f[None, :] <= f[:, None]) & (a[None, :] >= a[:, None])
    better = (f[None, :] < f[:, None]) | (a[None, :] > a[:, None])
    return ~np.any(no_worse & better, axis=1)
