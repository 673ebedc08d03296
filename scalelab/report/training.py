"""Training curves: validation accuracy per epoch of the most accurate trials (seed Figures 3 to 5)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from scalelab.report.html import Html, cell, figure, join, tag
from scalelab.report.style import LAYOUT, VAL_ACC_AXIS


def curves_section(df: pd.DataFrame, *, max_trials: int) -> Html:
    """One line per trial with a recorded curve, the ``max_trials`` most accurate ones."""
    recorded = df[[isinstance(c, list) and len(c) > 0 for c in df["curve"]]]
    title = tag("h2", "Training curves")
    if recorded.empty:
        return join([title, tag("p", "No trial recorded a per-epoch curve.", class_="note")])
    shown = recorded.sort_values("val_acc", ascending=False, kind="stable").head(max_trials)
    which = (f"the {len(shown)} most accurate of {len(recorded)} trials with a recorded curve"
             if len(shown) < len(recorded) else f"all {len(shown)} trials")
    how = (f"Validation accuracy after each epoch, for {which}, on the split held out from the training data. "
           f"A curve still rising at its last epoch would gain from a longer budget; a noisy or falling one "
           f"points at the learning rate or overfitting. Click a legend entry to hide its line.")
    return join([title, figure("fig-curves", curves_figure(shown)), tag("p", how, class_="how")])


def curves_figure(df: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for row in df.itertuples():
        curve = pd.DataFrame(row.curve)
        fig.add_trace(go.Scatter(x=curve["epoch"], y=100 * curve["val_acc"],
                                 mode="lines+markers" if len(curve) > 1 else "markers",
                                 name=cell(f"{row.model} (trial {row.trial})"), marker=dict(size=5),
                                 hovertemplate="epoch %{x}<br>%{y:.1f} % validation<extra>%{fullData.name}</extra>"))
    fig.update_layout(**LAYOUT)
    last = max((max(c["epoch"] for c in row.curve) for row in df.itertuples() if row.curve), default=1.0)
    fig.update_xaxes(title="epoch (passes over the training split)", range=[0, 1.05 * last])
    fig.update_yaxes(title=VAL_ACC_AXIS)
    return fig
