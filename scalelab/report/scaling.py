"""Sections on scaling curves: accuracy against FLOPs per dimension with fitted saturation curves (seed
Figures 1 and 6), where each dimension saturates, and compound scaling against each single dimension."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scalelab.analysis.compare import SINGLE_DIMENSIONS, DimensionFit, compound_vs_single
from scalelab.analysis.fit import Fit
from scalelab.analysis.fit_forms import FORMS
from scalelab.report.html import Html, cell, figure, flops, join, pct, points, table, tag
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
                 "the same point over the bootstrap refits. Curves are chosen among forms with a floor "
                 "(pow3, pow4, mmf4) wherever a dimension has four or more FLOPs values; with fewer only "
                 "pow2 fits, which never levels off, so no saturation point is given. Points further out "
                 "than 100× the largest trial are not given as numbers.",
            class_="how"),
    ])


def compound_section(fits: dict[str, DimensionFit], *, level: float) -> Html:
    """Compound minus each single dimension at equal FLOPs, as a figure and one answer per dimension."""
    diffs = compound_vs_single(fits, level=level)
    title = tag("h2", "Compound scaling against single dimensions at equal FLOPs")
    if diffs.empty:
        return join([title, tag("p", "Not answered: this needs fitted curves for compound scaling and for at "
                                     "least one single dimension over a common FLOPs range.", class_="note")])
    band = f"{100 * level:g} %"
    how = (f"Each line is the fitted validation accuracy of compound scaling minus that of one single "
           f"dimension at the same FLOPs, drawn over the FLOPs both were measured on; the band is the {band} "
           f"bootstrap interval of the difference. Above the zero line compound scaling is more accurate. The "
           f"intervals reflect the scatter of trials around each curve, not the choice of curve form.")
    answers = [tag("li", _answer(diffs[diffs["dimension"] == dim], dim, band))
               for dim in SINGLE_DIMENSIONS if dim in set(diffs["dimension"])]
    return join([title, figure("fig-compound-vs-single", compound_figure(diffs)), tag("p", how, class_="how"),
                 tag("ul", join(answers), class_="answers")])


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
    all_flops = pd.concat([item.points["flops"] for item in fits.values()])
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(**flops_axis(all_flops.min(), all_flops.max()))
    fig.update_yaxes(title=VAL_ACC_AXIS)
    return fig


def compound_figure(diffs: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for dim, part in diffs.groupby("dimension", sort=False):
        color = COLORS[str(dim)]
        fig.add_trace(_band(part["flops"], 100 * part["lower"], 100 * part["upper"], color, str(dim)))
        fig.add_trace(go.Scatter(
            x=part["flops"], y=100 * part["diff"], mode="lines", name=f"compound − {dim}", legendgroup=str(dim),
            line=dict(color=color, width=2.5),
            hovertemplate="%{x:.3s} multiply-adds<br>%{y:+.2f} points<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#555", dash="dot"))
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(**flops_axis(diffs["flops"].min(), diffs["flops"].max()))
    fig.update_yaxes(title="Δ validation accuracy (percentage points)")
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


def _answer(rows: pd.DataFrame, dim: str, band: str) -> str:
    end = rows.iloc[-1]
    if end["lower"] > 0:
        verdict = "compound scaling is more accurate"
    elif end["upper"] < 0:
        verdict = f"scaling {dim} alone is more accurate"
    else:
        verdict = "no clear difference at this confidence"
    span = ""
    if (rows["lower"] > 0).all() or (rows["upper"] < 0).all():
        span = f"; the interval excludes zero over the whole common range from {flops(rows['flops'].iloc[0])}"
    return (f"Compound against {dim} at {flops(end['flops'])} (largest FLOPs both reached): {verdict}. "
            f"Difference in validation accuracy {points(end['diff'])} ({band} CI {points(end['lower'])} to "
            f"{points(end['upper'])}; compound better in {pct(end['p_compound_better'], 0)} of bootstrap "
            f"pairs){span}.")
