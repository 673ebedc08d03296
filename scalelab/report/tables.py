"""Tables: the architecture of a study's most accurate trial (seed Table 1) and every trial's cost and
accuracy (seed Table 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab.arch.spec import NetworkSpec
from scalelab.errors import SpecError
from scalelab.report.html import Html, join, pct, table, tag
from scalelab.units import si


def architecture_section(df: pd.DataFrame) -> Html:
    """Table 1 of the most accurate trial, from its recorded spec."""
    best = df.loc[df["val_acc"].idxmax()]
    title = tag("h2", f"Table 1: architecture of the most accurate trial, {best['model']} (trial {best['trial']}, "
                      f"{pct(best['val_acc'])} validation accuracy)")
    try:
        spec = NetworkSpec.from_dict(best["spec"])
    except SpecError as exc:
        return join([title, tag("p", f"No readable network spec was recorded for this trial: {exc}",
                                class_="note")])
    rows = [[r["stage"], r["operator"], r["resolution"], r["channels"], r["layers"]] for r in spec.table()]
    how = (f"Stages as in Eq. 1 of the seed report: the operator, the input resolution of the stage (px), "
           f"its output channels and how many times the operator repeats. Input {spec.resolution} px, "
           f"{spec.num_classes} classes.")
    return join([title, table(["stage", "operator", "input resolution (px)", "#channels", "#layers"], rows,
                              numeric=(0, 3, 4)), tag("p", how, class_="how")])


def models_section(df: pd.DataFrame) -> Html:
    """Table 2: every trial, most accurate first, with parameters, FLOPs, accuracies and latency."""
    has_test = bool(df["test_acc"].notna().any())
    has_latency = bool(df["latency_ms"].notna().any())
    scaled = bool(df["dimension"].notna().any())
    headers = ["model", "trial", *(["scaling (d, w, r)"] if scaled else []), "parameters",
               "FLOPs (multiply-adds per image)", "input (px)", "validation accuracy",
               *(["test accuracy"] if has_test else []), *(["latency (ms)"] if has_latency else []),
               "epochs", "training time (s)"]
    rows = []
    for r in df.sort_values("val_acc", ascending=False, kind="stable").itertuples():
        scale = [f"{'baseline' if pd.isna(r.dimension) else r.dimension}: "
                 + ", ".join(_maybe(v, lambda x: f"{x:.2f}") for v in (r.d, r.w, r.r))] if scaled else []
        rows.append([r.model, r.trial, *scale, si(r.params), si(r.flops), r.resolution,
                     pct(r.val_acc), *([_maybe(r.test_acc, pct)] if has_test else []),
                     *([_maybe(r.latency_ms, lambda v: f"{v:.2f}")] if has_latency else []),
                     f"{r.epochs:g}", f"{r.wall_s:,.0f}"])
    first_number = 3 if scaled else 2
    devices = ", ".join(sorted(set(map(str, df["device"]))))
    how = (f"Validation accuracy is on the split held out from the training data; test accuracy, where "
           f"recorded, is on the dataset's separate test split. FLOPs count multiply-adds for one image at "
           f"the model's input size. Latency and training time were measured on: {devices}.")
    return join([tag("h2", "Table 2: models, cost and accuracy"),
                 table(headers, rows, numeric=(1, *range(first_number, len(headers)))),
                 tag("p", how, class_="how")])


def _maybe(value: float, fmt) -> str:
    return "–" if value is None or np.isnan(value) else fmt(value)
