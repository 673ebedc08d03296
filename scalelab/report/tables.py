"""Tables and the model comparison: the architecture of a study's most accurate trial (seed Table 1),
every trial's cost and accuracy (seed Table 2), and accuracy against speed (seed Figures 3 and 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from scalelab.analysis.results import complete, network_means
from scalelab.analysis.separation import Separation, separate_best
from scalelab.arch.spec import NetworkSpec
from scalelab.errors import SpecError
from scalelab.report.html import Html, cell, figure, join, pct, table, tag
from scalelab.report.style import LAYOUT
from scalelab.units import si


def architecture_section(df: pd.DataFrame) -> Html:
    """Table 1 of the study's best trial (by its kind's definition), from its recorded spec."""
    best = best_row(df)
    if best is None:
        return join([tag("h2", "Table 1: architecture of the best network"), tag("p", f"No best network ({NO_BEST}).",
                                                                                 class_="note")])
    title = tag("h2", f"Table 1: architecture of the study's best trial, {best['model']} (trial {best['trial']}, "
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
    has_test, has_latency, has_speed = (_has(df, c) for c in ("test_acc", "latency_ms", "images_per_s"))
    scaled = bool(df["dimension"].notna().any())
    headers = ["model", "trial", *(["scaling (d, w, r)"] if scaled else []), "parameters",
               "FLOPs (multiply-adds per image)", "input (px)", "validation accuracy",
               *(["test accuracy"] if has_test else []), *(["latency (ms)"] if has_latency else []),
               *(["training (images/s)"] if has_speed else []), "epochs", "training time (s)"]
    means = network_means(df)
    replicated = bool((means["n"] > 1).any())
    if replicated:  # one row per network: the first seed's cost and speed, the mean accuracy over seeds
        df = means.assign(val_acc=means["val_acc_mean"], test_acc=means["test_acc_mean"])
        headers[headers.index("validation accuracy")] = "validation accuracy: mean over seeds (95% interval, seeds)"
        if has_test:
            headers[headers.index("test accuracy")] = "test accuracy: mean over seeds"
    rows = []
    for r in df.sort_values("val_acc", ascending=False, kind="stable").itertuples():
        accuracy = pct(r.val_acc) if not replicated else (
            f"{pct(r.val_acc)} ({_maybe(r.val_acc_lower, pct)} to {_maybe(r.val_acc_upper, pct)}, {r.n})")
        scale = [f"{'base' if pd.isna(r.dimension) else r.dimension}: "
                 + ", ".join(_maybe(v, lambda x: f"{x:.2f}") for v in (r.depth_mult, r.width_mult, r.resolution_mult))] if scaled else []
        rows.append([r.model, r.trial, *scale, si(r.params), si(r.flops), r.resolution_px,
                     accuracy, *([_maybe(r.test_acc, pct)] if has_test else []),
                     *([_maybe(r.latency_ms, lambda v: f"{v:.2f}")] if has_latency else []),
                     *([_maybe(r.images_per_s, lambda v: f"{v:,.0f}")] if has_speed else []),
                     f"{r.epochs:.3g}", f"{r.wall_s:,.0f}"])
    first_number = 3 if scaled else 2
    devices = ", ".join(sorted(set(map(str, df["device"]))))
    speeds = [*(["Latency is the median time of one forward pass of one image (batch 1, after warm-up)"]
                if has_latency else []),
              *(["training speed counts images per second of training steps"] if has_speed else [])]
    how = ("Validation accuracy is on the split held out from the training data; test accuracy, where "
           "recorded, is on the dataset's separate test split. FLOPs count multiply-adds for one image at "
           "the model's input size."
           + (f" {'; '.join(speeds)}; measured on: {devices}." if speeds else f" Trained on: {devices}."))
    return join([tag("h2", "Table 2: models, cost and accuracy"),
                 table(headers, rows, numeric=(1, *range(first_number, len(headers)))),
                 tag("p", how, class_="how")])


def speed_section(df: pd.DataFrame, level: float) -> Html:
    """Accuracy against batch-1 latency and against training speed, one point per trial: which model
    is both accurate and fast (the seed's Figure 3 and, for V1 against V2, Figure 4), and whether the most
    accurate is separated from the rest at ``level``."""
    panels = [(column, title) for column, title in (("latency_ms", "inference latency, batch 1 (ms, log scale)"),
                                                    ("images_per_s", "training speed (images/s, log scale)"))
              if _has(df, column)]
    if not panels:
        return join([])
    test = bool(df["test_acc"].notna().all())
    acc, acc_title = (df["test_acc"], "test accuracy (%)") if test else (df["val_acc"], "validation accuracy (%)")
    parts = [tag("h2", "Accuracy against speed")]
    for column, title in panels:
        fig = go.Figure(go.Scatter(
            x=df[column], y=100 * acc, mode="markers+text", text=[cell(m) for m in df["model"]],
            textposition="top center", marker=dict(size=12, color="#1f77b4"), cliponaxis=False,
            hovertemplate="%{text}<br>%{x:.3g}<br>%{y:.1f} %<extra></extra>"))
        fig.update_layout(**{**LAYOUT, "height": 420, "showlegend": False})
        x = np.log10(df[column].astype(float))
        pad = max(0.15 * float(x.max() - x.min()), 0.1)  # room for the labels at either end
        fig.update_xaxes(type="log", title=title, range=[float(x.min()) - pad, float(x.max()) + pad])
        fig.update_yaxes(title=acc_title)
        parts.append(figure(f"fig-{column.replace('_', '-')}", fig))
    fastest = df.loc[df["images_per_s"].idxmax()] if _has(df, "images_per_s") else None
    best = best_row(df)
    answer = f"Most accurate: {NO_BEST}." if best is None else (
        f"Most accurate on validation: {best['model']} "
        f"({pct(network_means(df).set_index('model').loc[best['model'], 'val_acc_mean'])} mean over its seeds). "
        f"{separation_of_best(df, best, level).text()}.")
    if fastest is not None:
        answer += f" Fastest to train: {fastest['model']} ({fastest['images_per_s']:,.0f} images/s)."
    parts += [tag("p", "Up and to the left is better for latency, up and to the right for training speed. "
                       "Models trained for the same time see more images when they train faster.", class_="how"),
              tag("p", tag("strong", answer))]
    return join(parts)


def separation_of_best(df: pd.DataFrame, best: pd.Series, level: float) -> Separation:
    """The best network against every other trained one, replicate by replicate (a results table
    without a ``replicate`` column has one replicate per network)."""
    done = complete(df).dropna(subset=["val_acc"])
    replicates = done["replicate"] if "replicate" in done else pd.Series(0, index=done.index)
    accuracy: dict[str, dict[int, float]] = {}
    for model, replicate, acc in zip(done["model"], replicates, done["val_acc"]):
        accuracy.setdefault(model, {})[int(replicate)] = float(acc)
    return separate_best(accuracy, best["model"], level=level)


NO_BEST = "none: every network trained is within noise of chance"


def stopped_section(df: pd.DataFrame) -> Html:
    """Trials stopped before the end of their budget (pruned, halved, diverged), each with its reason;
    nothing when there are none."""
    if df.empty:
        return Html("")
    rows = [[r.trial, r.model, r.status, f"{r.epochs:.3g}", "-" if pd.isna(r.val_acc) else pct(r.val_acc), r.reason]
            for r in df.sort_values("trial").itertuples()]
    return join([tag("h2", "Stopped early"),
                 tag("p", f"{len(df)} trial(s) ended before their budget; their curves are not in the figures."),
                 table(["trial", "model", "status", "epochs", "val acc", "why"], rows, numeric=(0, 3, 4))])


def best_row(df: pd.DataFrame) -> pd.Series | None:
    """The first trial of the study's best network as the results table marks it (``best``); None when
    the study names none (every network at chance)."""
    marked = df[df["best"].astype(bool)]
    return marked.iloc[0] if len(marked) else None


def _has(df: pd.DataFrame, column: str) -> bool:
    return column in df and bool(df[column].notna().any())


def _maybe(value: float, fmt) -> str:
    return "–" if value is None or np.isnan(value) else fmt(value)
