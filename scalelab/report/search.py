"""Sections on the two searches: the alpha-beta-gamma grid under its FLOPs constraint, and the baseline
search's accuracy-FLOPs Pareto front with contours of its reward ``ACC * (FLOPS / T)^w``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scalelab.analysis.compare import pareto_front
from scalelab.report.html import Html, cell, figure, flops, join, pct, table, tag
from scalelab.report.style import LAYOUT, VAL_ACC_AXIS, flops_axis
from scalelab.report.tables import NO_BEST, best_row, separation_of_best
from scalelab.search.kinds.grid import SEPARATION_LEVEL
from scalelab.search.targets import reward

_MAX_CONSTRAINT_CURVES = 6


def grid_section(df: pd.DataFrame, level: float = SEPARATION_LEVEL) -> Html:
    """Scatter of beta against gamma coloured by accuracy, constraint curves, the winner, a table."""
    title = tag("h2", "Grid search of the compound coefficients α, β, γ")
    df = df[df[["alpha", "beta", "gamma"]].notna().all(axis=1)]
    if df.empty:
        return join([title, tag("p", "No trial recorded its α, β and γ.", class_="note")])
    product = df["predicted_ratio"]
    k = float(df["multiple"].iloc[0])
    best = best_row(df)
    how = (f"Each dot is one (α, β, γ) trial: β (width base) across, γ (resolution base) up, colour the "
           f"validation accuracy, size α (depth base). Dotted lines are the constraint α·β²·γ² = K for each "
           f"α tried, with K = {k:.2f} (the study's target), so points on the line of their α cost the "
           f"same FLOPs growth per unit φ. The star marks the most accurate trial.")
    answer = f"No winner ({NO_BEST})." if best is None else (
        f"Winner: α = {best['alpha']:.2f}, β = {best['beta']:.2f}, γ = {best['gamma']:.2f} "
        f"(α·β²·γ² = {product[best.name]:.2f}) with "
        f"{pct(best['val_acc'])} validation accuracy at {flops(best['flops'])} (trial {best['trial']}, "
        f"model {best['model']}).")
    order = df.assign(product=product).sort_values("val_acc", ascending=False, kind="stable")
    rows = [[r.trial, f"{r.alpha:.2f}", f"{r.beta:.2f}", f"{r.gamma:.2f}", f"{r.product:.2f}",
             flops(r.flops), pct(r.val_acc)] for r in order.itertuples()]
    headers = ["trial", "α (depth)", "β (width)", "γ (resolution)", "α·β²·γ²", "FLOPs", "validation accuracy"]
    verdict = [] if best is None else [tag("p", separation_of_best(df, best, level).text(_coefficients(df)))]
    return join([title, figure("fig-grid", grid_figure(df, k)), tag("p", how, class_="how"),
                 tag("p", tag("strong", answer)), *verdict, table(headers, rows, numeric=tuple(range(7)))])


def _coefficients(df: pd.DataFrame) -> dict[str, str]:
    return {r.model: f"α = {r.alpha:g}, β = {r.beta:g}, γ = {r.gamma:g}" for r in df.itertuples()}


def pareto_section(df: pd.DataFrame, *, target_flops: float | None, exponent: float,
                   source: str = "set for this report") -> Html:
    """Accuracy against FLOPs with the front highlighted and iso-reward lines; ``source`` says where T
    came from (without a T, it is the median FLOPs of the search's trials)."""
    target = float(df["flops"].median()) if target_flops is None else target_flops
    if target_flops is None:
        source = "the median FLOPs of this search's trials"
    scored = df.assign(reward=reward(df["val_acc"], df["flops"], target, exponent),
                       front=pareto_front(df["flops"], df["val_acc"]))
    best = scored.loc[scored["reward"].idxmax()]
    how = (f"Grey dots are all trials, blue the Pareto front: no other trial has fewer (or equal) FLOPs "
           f"and higher (or equal) validation accuracy. Dashed lines join models of equal reward "
           f"ACC·(FLOPS/T)^w with T = {flops(target)} ({source}) and w = {exponent:g}; a trial above a "
           f"line has a higher reward than the line's value.")
    answer = (f"{int(scored['front'].sum())} of {len(df)} trials are on the front. Highest reward "
              f"{best['reward']:.4f}: trial {best['trial']} ({best['model']}), {pct(best['val_acc'])} validation "
              f"accuracy at {flops(best['flops'])}.")
    return join([tag("h2", "Baseline search: accuracy against FLOPs and the Pareto front"),
                 figure("fig-pareto", pareto_figure(scored, target, exponent)),
                 tag("p", how, class_="how"), tag("p", tag("strong", answer))])


def grid_figure(df: pd.DataFrame, k: float) -> go.Figure:
    fig = go.Figure()
    betas = np.linspace(df["beta"].min() - 0.05, df["beta"].max() + 0.05, 60)
    alphas = np.unique(df["alpha"])
    for a in alphas[np.linspace(0, alphas.size - 1, min(alphas.size, _MAX_CONSTRAINT_CURVES)).astype(int)]:
        fig.add_trace(go.Scatter(x=betas, y=np.sqrt(k / (a * betas**2)), mode="lines",
                                 name=f"α·β²·γ² = K at α = {a:.2f}", hoverinfo="skip",
                                 line=dict(color="#888", dash="dot", width=1)))
    span = max(float(np.ptp(df["alpha"])), 1e-9)
    fig.add_trace(go.Scatter(
        x=df["beta"], y=df["gamma"], mode="markers", name="trials",
        marker=dict(size=10 + 18 * (df["alpha"] - df["alpha"].min()) / span, color=100 * df["val_acc"],
                    colorscale="Viridis", showscale=True, line=dict(color="white", width=1),
                    colorbar=dict(title=dict(text=VAL_ACC_AXIS, side="right"))),
        text=[cell(m) for m in df["model"]], customdata=np.column_stack([df["alpha"], 100 * df["val_acc"]]),
        hovertemplate="%{text}<br>α=%{customdata[0]:.3g}, β=%{x:.3g}, γ=%{y:.3g}"
                      "<br>%{customdata[1]:.1f} % validation<extra></extra>"))
    best = best_row(df)
    if best is not None:
        fig.add_trace(go.Scatter(x=[best["beta"]], y=[best["gamma"]], mode="markers", name="winner (highest accuracy)",
                                 marker=dict(symbol="star", size=22, color="rgba(0,0,0,0)",
                                             line=dict(color="#d62728", width=2.5)), hoverinfo="skip"))
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(title="β: width multiplier per unit of φ (dimensionless)")
    fig.update_yaxes(title="γ: resolution multiplier per unit of φ (dimensionless)",
                     range=[df["gamma"].min() - 0.08, df["gamma"].max() + 0.08])
    return fig


def pareto_figure(scored: pd.DataFrame, target: float, exponent: float) -> go.Figure:
    """``scored`` has the results columns plus ``reward`` and ``front`` (bool)."""
    fig = go.Figure()
    x = np.geomspace(scored["flops"].min() / 1.3, scored["flops"].max() * 1.3, 60)
    for level, label in ((scored["reward"].max(), "best trial"), (scored["reward"].median(), "median trial")):
        fig.add_trace(go.Scatter(x=x, y=100 * level * (x / target) ** -exponent, mode="lines",
                                 name=f"reward {level:.3f} ({label})", hoverinfo="skip",
                                 line=dict(color="#c08a2b", dash="dash", width=1.2)))
    hover = ("%{text}<br>%{x:.3s} multiply-adds<br>%{y:.1f} % validation<br>reward %{customdata:.4f}"
             "<extra></extra>")
    for on_front, name, mode, style in ((False, "trials", "markers", dict(color="#9aa1ad", size=8)),
                                        (True, "Pareto front", "lines+markers", dict(color="#1f5fbf", size=11))):
        part = scored[scored["front"] == on_front].sort_values("flops", kind="stable")
        fig.add_trace(go.Scatter(x=part["flops"], y=100 * part["val_acc"], mode=mode, name=name, marker=style,
                                 text=[cell(m) for m in part["model"]], customdata=part["reward"],
                                 hovertemplate=hover))
    best = scored.loc[scored["reward"].idxmax()]
    fig.add_trace(go.Scatter(x=[best["flops"]], y=[100 * best["val_acc"]], mode="markers", name="highest reward",
                             marker=dict(symbol="star", size=20, color="rgba(0,0,0,0)",
                                         line=dict(color="#d62728", width=2.5)), hoverinfo="skip"))
    fig.update_layout(**LAYOUT)
    fig.update_xaxes(**flops_axis(x[0], x[-1]))
    fig.update_yaxes(title=VAL_ACC_AXIS)
    return fig
