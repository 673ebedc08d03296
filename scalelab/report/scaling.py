"""Sections on scaling curves: accuracy against FLOPs per dimension with fitted saturation curves (seed
Figures 1 and 6), where each dimension saturates, and compound scaling against each single dimension
(calibrated verdicts, :mod:`scalelab.analysis.verdicts`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scalelab.analysis.compare import DimensionFit, compound_vs_single
from scalelab.analysis.fit import Fit
from scalelab.analysis.fit_forms import FORMS
from scalelab.analysis.results import network_means
from scalelab.report.html import (
    Html,
    cell,
    figure,
    flops,
    join,
    pct,
    points,
    table,
    tag,
)
from scalelab.report.style import COLORS, LAYOUT, VAL_ACC_AXIS, flops_axis
from scalelab.units import si


def scaling_section(fits: dict[str, DimensionFit], *, level: float, gain: float) -> Html:
    """Figure of every dimension's points and curve, then a table of where each saturates."""
    band = f"{100 * level:g} %"
    how = (f"Each colour is one way of scaling the baseline. Dots are trials (validation accuracy, on the "
           f"split held out from the training data); lines are the curve form the fitter chose for that "
           f"dimension, shaded bands its {band} bootstrap confidence band. The x-axis is logarithmic: equal "
           f"steps are equal multiples of FLOPs. A curve that flattens early has saturated.")
    notes = [tag("p", f"{fit.dimension}: points only, no curve fitted ({fit.note}).", class_="note")
             for fit in fits.values() if fit.fit is None]
    rows = [_saturation_row(f, level, gain) for f in fits.values()]
    headers = ["dimension", "trials", "FLOPs measured (multiply-adds)", "best validation accuracy",
               "curve form", f"fitted ceiling ({band} CI)", f"doubling FLOPs gains < {100 * gain:g} points beyond"]
    return join([
        tag("h2", "Validation accuracy against FLOPs, per scaling dimension"),
        figure("fig-scaling", scaling_figure(fits, level)),
        tag("p", how, class_="how"),
        *notes,
        tag("h3", "Where each dimension saturates"),
        table(headers, rows, numeric=(1, 3)),
        tag("p", "Saturation comes from the fitted curve (Fit.saturation): the FLOPs from which on doubling "
                 "the compute adds less than the stated gain in validation accuracy. Beyond the largest "
                 "measured FLOPs it is an extrapolation of the chosen form; the interval is the spread of "
                 "the same point over the bootstrap refits. A curve needs four or more FLOPs values; a dimension "
                 "with fewer shows its points only, and no saturation point is given. A dimension whose "
                 "accuracy shows no decreasing error is fitted flat (already saturated at its smallest trial). "
                 "Points further out than 100× the largest trial are not given as numbers.",
            class_="how"),
    ])


def compound_section(fits: dict[str, DimensionFit], *, level: float) -> Html:
    """Compound minus each single dimension at equal FLOPs (calibrated verdicts on the trials themselves,
    :func:`scalelab.analysis.compare.compound_vs_single`), as a figure and one answer per dimension."""
    verdicts = compound_vs_single(fits, level=level)
    title = tag("h2", "Compound scaling against single dimensions at equal FLOPs")
    if verdicts.empty:
        return join([title, tag("p", "Not answered: this needs trials of compound scaling and of at least one "
                                     "single dimension.", class_="note")])
    band, m = f"{100 * level:g} %", len(verdicts)
    each = f" (each at {100 * verdicts['interval_level'].iloc[0]:.3g} %)" if m > 1 else ""
    how = (f"Each comparison is one linear model on the trials of compound scaling, of the single dimension and "
           f"of the base network they share, every replicate included: validation accuracy = one smooth curve "
           f"in log FLOPs shared by both (linear, or quadratic from six FLOPs values) + a difference that grows "
           f"from zero at the base network, linearly in log FLOPs, to the value shown at the largest FLOPs both "
           f"reached + a seed effect that pairs the trials of one training seed. Bars are that difference with "
           f"its {band} t interval, simultaneous over the {m} comparison{'s' if m > 1 else ''}{each}; right of "
           f"the zero line compound scaling is more accurate. A verdict is stated only where the interval "
           f"excludes zero; on simulated sweeps in which no dimension differs, fewer than 5 % of studies get "
           f"any verdict but 'no clear difference' (scalelab bench comparisons). With seeds, where the networks "
           f"scatter around the shared curve more than the seeds explain, the answer compares measured "
           f"networks instead, as its sentence below says.")
    answers = [tag("li", _answer(row)) for row in verdicts.itertuples(index=False)]
    answered = verdicts[verdicts["answered"]]
    parts = [title]
    if not answered.empty:
        parts.append(figure("fig-compound-vs-single", compound_figure(answered)))
    parts += [tag("p", how, class_="how"), tag("ul", join(answers), class_="answers")]
    return join(parts)


def scaling_figure(fits: dict[str, DimensionFit], level: float) -> go.Figure:
    fig = go.Figure()
    for dim, item in fits.items():
        color, pts = COLORS.get(dim, "#555"), item.points
        if item.fit is not None:
            _add_curve(fig, item.fit, dim, color, level)
        fig.add_trace(go.Scatter(
            x=pts["flops"], y=100 * pts["val_acc"], mode="markers", name=f"{dim} (trials)", legendgroup=dim,
            marker=dict(color=color, size=9, line=dict(color="white", width=1)),
            text=[cell(m) for m in pts["model"]], customdata=np.column_stack([pts["depth_mult"], pts["width_mult"], pts["resolution_mult"]]),
            hovertemplate="%{text}<br>d=%{customdata[0]:.2f}, w=%{customdata[1]:.2f}, r=%{customdata[2]:.2f}"
                          "<br>%{x:.3s} multiply-adds<br>%{y:.1f} % validation<extra></extra>"))
        means = network_means(pts, level)
        if (means["n"] > 1).any():  # replicates: each network's mean with its t interval
            fig.add_trace(go.Scatter(
                x=means["flops"], y=100 * means["val_acc_mean"], mode="markers", legendgroup=dim,
                name=f"{dim} (mean of seeds, {100 * level:g} % interval)",
                marker=dict(color=color, size=13, symbol="diamond", line=dict(color="black", width=1)),
                error_y=dict(type="data", array=100 * (means["val_acc_upper"] - means["val_acc_mean"]).fillna(0),
                             arrayminus=100 * (means["val_acc_mean"] - means["val_acc_lower"]).fillna(0),
                             color=color, thickness=1.5),
                text=[cell(f"{m}: {n} seeds") for m, n in zip(means["model"], means["n"])],
                hovertemplate="%{text}<br>%{x:.3s} multiply-adds<br>mean %{y:.1f} % validation<extra></extra>"))
    all_flops = pd.concat([item.points["flops"] for item in fits.values()])
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(**flops_axis(all_flops.min(), all_flops.max()))
    fig.update_yaxes(title=VAL_ACC_AXIS)
    return fig


def compound_figure(verdicts: pd.DataFrame) -> go.Figure:
    """One bar per single dimension: compound minus it at equal FLOPs, with its interval."""
    fig = go.Figure()
    for row in verdicts.itertuples(index=False):
        color = COLORS.get(str(row.dimension), "#555")
        fig.add_trace(go.Scatter(
            x=[100 * row.diff], y=[f"compound − {row.dimension}"], mode="markers",
            name=f"compound − {row.dimension}",
            marker=dict(color=color, size=11),
            error_x=dict(type="data", symmetric=False, array=[100 * (row.upper - row.diff)],
                         arrayminus=[100 * (row.diff - row.lower)], color=color, thickness=2.5, width=8),
            customdata=[[100 * row.lower, 100 * row.upper, row.flops_ref]],
            hovertemplate="%{x:+.2f} points at %{customdata[2]:.3s} multiply-adds<br>interval %{customdata[0]:+.2f} "
                          "to %{customdata[1]:+.2f}<extra></extra>"))
    fig.add_vline(x=0, line=dict(color="#555", dash="dot"))
    fig.update_layout(**{**LAYOUT, "showlegend": False})
    fig.update_xaxes(title="compound minus single dimension, validation accuracy (percentage points)")
    fig.update_yaxes(autorange="reversed")
    return fig


def _add_curve(fig: go.Figure, fit: Fit, dim: str, color: str, level: float) -> None:
    x = np.geomspace(*fit.c_range, 80)
    lower, upper = fit.band(x, level)
    fig.add_trace(_band(x, 100 * lower, 100 * upper, color, dim))
    fig.add_trace(go.Scatter(x=x, y=100 * fit.predict(x), mode="lines", name=f"{dim} fit ({fit.form})",
                             legendgroup=dim, line=dict(color=color, width=2),
                             hovertemplate="%{x:.3s} multiply-adds<br>fit %{y:.1f} %<extra></extra>"))


def _band(x, lower, upper, color: str, group: str) -> go.Scatter:
    x = np.asarray(x)
    return go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([np.asarray(upper), np.asarray(lower)[::-1]]),
                      fill="toself", fillcolor=color, opacity=0.18, line=dict(width=0), hoverinfo="skip",
                      legendgroup=group, showlegend=False)


def _saturation_row(item: DimensionFit, level: float, gain: float) -> list[object]:
    pts, fit = item.points, item.fit
    measured = f"{si(pts['flops'].min())} to {si(pts['flops'].max())}"
    best = pct(pts["val_acc"].max())
    if fit is None:
        return [item.dimension, len(pts), measured, best, "none (too few points)", "", ""]
    return [item.dimension, len(pts), measured, best, fit.form, _ceiling(fit, level), _saturation(fit, gain)]


def _ceiling(fit: Fit, level: float) -> str:
    if not FORMS[fit.form].has_floor:
        return "none: this form rises without limit"
    lo, hi = fit.param_ci["E"]
    return f"{pct(fit.asymptote)} ({pct(1 - hi)} to {pct(1 - lo)})"


_CREDIBLE_REACH = 100.0  # extrapolations further beyond the largest trial are not reported as numbers


def _saturation(fit: Fit, gain: float) -> str:
    if not FORMS[fit.form].has_floor:
        return ("not estimated: with fewer than four FLOPs values only a curve without a ceiling (pow2) "
                "can be fitted, and it never levels off")
    at, (lo, hi) = fit.saturation(gain), fit.c_range
    if at > _CREDIBLE_REACH * hi:
        return f"not within {_CREDIBLE_REACH:.0f}× the largest trial: the fitted curve is still gaining there"
    if at <= lo:
        where = f"already at the smallest trial ({flops(lo)})"
    elif at <= hi:
        where = f"{flops(at)} (within the measured range)"
    else:
        where = f"{flops(at)}, {at / hi:,.{1 if at / hi < 10 else 0}f}× beyond the largest trial (extrapolated)"
    return where + _saturation_interval(fit, gain)


def _saturation_interval(fit: Fit, gain: float) -> str:
    if fit.n_bootstrap == 0:
        return ""
    lo, hi = fit.saturation_ci(gain)
    reach = _CREDIBLE_REACH * fit.c_range[1]
    upper = flops(hi) if hi <= reach else f"over {_CREDIBLE_REACH:.0f}× the largest trial"
    return f"; {fit.level:.0%} interval {si(lo)} to {upper}"


def _answer(row) -> str:
    """The sentence for one comparison: a verdict only with its interval behind it, and for no clear
    difference what it would take to know."""
    dim = row.dimension
    if not row.answered:
        return f"Compound against {dim}: not answered ({row.note})."
    m = row.comparisons
    ci = (f"{100 * row.level:g} % CI {100 * row.lower:+.1f} to {points(row.upper)}"
          + (f", simultaneous over the {m} comparisons" if m > 1 else ""))
    seeds = f"up to {row.seeds} seeds per network" if row.seeds > 1 else "1 seed per network"
    model = "measured networks" if row.variance == "bracket" else f"{row.curve} shared curve"
    source = f"from {row.trials} trials of {row.networks} networks, {seeds}; {model}"
    where = f"Compound against {dim} at {flops(row.flops_ref)} (largest FLOPs both reached)"
    if row.identical:
        return (f"{where}: no clear difference. {row.note.capitalize()}, so these trials cannot tell the "
                f"dimensions apart: the difference is exactly {points(0.0)} ({ci}; {source}). Knowing needs "
                f"trials whose accuracies differ at all; if they are at chance, a larger training budget first.")
    scatter = ""
    if row.variance == "bracket":
        measured = dim if row.bracketed == "compound" else "compound"
        scatter = (f" The networks scatter around the shared curve more than the seed-to-seed spread explains "
                   f"(lack-of-fit p = {row.lack_of_fit_p:.2g}), so the curve is not used: {row.bracketed}'s "
                   f"accuracy at {flops(row.flops_ref)} is taken to lie between its networks at "
                   f"{flops(row.bracket_lo)} and {flops(row.bracket_hi)} (assuming it moves monotonically between "
                   f"them), and the interval spans both, each against {measured}'s network with the seed-to-seed "
                   f"noise; the difference shown interpolates between them in log FLOPs.")
    elif row.variance == "networks":
        scatter = (f" The networks scatter around the shared curve more than the seed-to-seed spread explains "
                   f"(lack-of-fit p = {row.lack_of_fit_p:.2g}), so the interval is built from the scatter between "
                   f"networks.")
    said = f"Compound minus {dim} {points(row.diff)} ({ci}; {source})."
    if row.verdict == "compound":
        return f"{where}: compound scaling is more accurate. {said}{scatter}"
    if row.verdict == dim:
        return f"{where}: scaling {dim} alone is more accurate. {said}{scatter}"
    if row.variance == "bracket":
        return (f"{where}: no clear difference at this confidence. {said}{scatter} To know, train a "
                f"{row.bracketed} network nearer {flops(row.flops_ref)} (the span between its two networks "
                f"does not narrow with seeds; resume the sweep with --add {row.bracketed}:K, where `scalelab "
                f"plan` shows the FLOPs each K lands at) or more seeds per network (they narrow each end's "
                f"noise).")
    return (f"{where}: no clear difference at this confidence. {said}{scatter} These trials could detect a "
            f"difference of about {100 * row.detectable:.1f} points (80 % power); to resolve smaller ones, "
            f"train more seeds per network (the interval narrows about as 1/√seeds: four times the seeds, half "
            f"the width) or more FLOPs values per dimension.")
