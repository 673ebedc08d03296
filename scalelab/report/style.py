"""Look of the report's figures: one layout, one colour per scaling dimension, axes titled with units."""

from __future__ import annotations

import math

from scalelab.units import si

FLOPS_AXIS = "FLOPs (multiply-adds per image, log scale)"
VAL_ACC_AXIS = "validation accuracy (%)"
COLORS = dict(width="#1f77b4", depth="#2ca02c", resolution="#9467bd", compound="#d62728")
LAYOUT = dict(template="plotly_white", height=480, margin=dict(l=70, r=30, t=40, b=60),
              legend=dict(orientation="h", y=-0.18))


def flops_axis(lo: float, hi: float) -> dict:
    """A log x-axis over FLOPs from ``lo`` to ``hi`` with 4 or more ticks read as '20 M', '1 G'."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [m * 10.0**k for k in decades for m in mantissas if lo <= m * 10.0**k <= hi]
        if len(ticks) >= 4:
            break
    return dict(type="log", title=FLOPS_AXIS, tickvals=ticks, ticktext=[si(t) for t in ticks])
