"""The static report: ``index.html`` listing the studies, one ``study-<slug>.html`` page per study, and one
shared ``plotly.min.js``, all built from the results table (``scalelab.analysis.results.results_table``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import plotly.offline

from scalelab.analysis.compare import fit_dimensions
from scalelab.analysis.results import complete
from scalelab.search.record import Status
from scalelab.files import WriteError, write_bytes_atomic, write_text_atomic
from scalelab.report.html import (
    PLOTLY_JS,
    Html,
    flops,
    join,
    page,
    pct,
    slugs,
    table,
    tag,
)
from scalelab.report.inputs import ReportError, ReportSettings, check_results
from scalelab.report.scaling import compound_section, scaling_section
from scalelab.report.search import grid_section, pareto_section
from scalelab.report.tables import (
    NO_BEST,
    architecture_section,
    best_row,
    models_section,
    speed_section,
    stopped_section,
)
from scalelab.report.training import curves_section
from scalelab.search.kinds import StudyKind, get_kind
from scalelab.search.kinds.grid import SEPARATION_LEVEL
from scalelab.units import si

STOPPED = (Status.PRUNED.value, Status.DIVERGED.value)
"""Trials that trained and ended before their budget: listed with their reasons on the study page."""

SPLIT_NOTE = ("All accuracies are on the validation split held out from the training data, unless a column "
              "says test.")


def write_site(df: pd.DataFrame, out_dir: Path, *, title: str = "scalelab report",
               settings: ReportSettings | None = None) -> list[Path]:
    """Write the report into ``out_dir`` (created if needed) and return the files written, index first.

    ``settings`` default to :class:`ReportSettings` ``()``. Pages of earlier runs for studies no longer in
    ``df`` are left in place but no longer linked.
    """
    check_results(df)
    ended_early = df[df["status"].isin(STOPPED)]
    df = complete(df)  # the figures and tables are of trials trained to the end
    settings = settings or ReportSettings()
    names = [str(n) for n in pd.unique(df["study"])]
    files = {name: f"study-{slug}.html" for name, slug in slugs(names).items()}
    texts = {"index.html": _index(df, files, title)}
    for name, file in files.items():
        texts[file] = study_page(df[df["study"].astype(str) == name], title, settings,
                                 ended_early[ended_early["study"].astype(str) == name])
    out_dir = Path(out_dir)
    # Every file goes to a temporary file and is renamed into place, so a kill at any moment leaves each
    # one either as it was or complete. The order makes the site consistent at every moment too: the
    # shared plotly.min.js first, then the study pages, the index last, so the index never links a page
    # (nor a page a script) that is not complete yet.
    order = [PLOTLY_JS, *(file for file in texts if file != "index.html"), "index.html"]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for file in order:
            if file == PLOTLY_JS:
                _write_asset(out_dir / PLOTLY_JS, plotly.offline.get_plotlyjs())
            else:
                write_text_atomic(out_dir / file, texts[file])
    except OSError as exc:
        raise ReportError(f"cannot write the report to '{out_dir}': {exc.strerror or exc}") from exc
    except WriteError as exc:
        raise ReportError(f"cannot write the report to '{out_dir}': {exc.reason}") from exc
    return [out_dir / file for file in texts] + [out_dir / PLOTLY_JS]


def _write_asset(path: Path, text: str) -> None:
    """Write a shared asset unless an identical copy is already there (a complete one: written atomically)."""
    data = text.encode("utf-8")
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass
    write_bytes_atomic(path, data)


def study_page(df: pd.DataFrame, title: str, settings: ReportSettings, stopped: pd.DataFrame) -> str:
    """The page of one study: header with its settings, then the sections its kind calls for, then the
    trials ``stopped`` before the end of their budget and why."""
    kind = get_kind(str(df["kind"].iloc[0]))
    name = str(df["study"].iloc[0])
    study = _Study(df, settings)
    body = join([tag("h1", name), _settings(df, kind, settings), tag("p", SPLIT_NOTE),
                 *(_SECTIONS[section](study) for section in kind.report_sections),
                 stopped_section(stopped)])
    nav = tag("nav", Html(f'<a href="index.html">← {tag("span", title)}: all studies</a>'))
    return page(f"{name} · {title}", body, nav=nav)


class _Study:
    """One study's rows and the report settings, with its curve fits made once for every section."""

    def __init__(self, df: pd.DataFrame, settings: ReportSettings) -> None:
        self.df, self.settings = df, settings

    @functools.cached_property
    def fits(self) -> dict:
        s = self.settings
        return fit_dimensions(self.df, n_bootstrap=s.n_bootstrap, level=s.level, seed=s.seed)


def _scaling(study: _Study) -> Html:
    s = study.settings
    return scaling_section(study.fits, level=s.level, gain=s.saturation_gain) if study.fits else Html("")


def _compound(study: _Study) -> Html:
    s = study.settings
    return compound_section(study.fits, level=s.judged_levels.get(str(study.df["study"].iloc[0]), s.level))


def _pareto(study: _Study) -> Html:
    df, s = study.df, study.settings
    own = s.rewards.get(str(df["study"].iloc[0]))
    if own is not None:
        return pareto_section(df, target_flops=own[0], exponent=own[1], source="the search's own target")
    return pareto_section(df, target_flops=s.target_flops, exponent=s.reward_exponent)


def _grid(study: _Study) -> Html:
    level = study.settings.judged_levels.get(str(study.df["study"].iloc[0]), SEPARATION_LEVEL)
    return grid_section(study.df, level=level)


_SECTIONS: dict[str, Callable[[_Study], Html]] = dict(
    scaling=_scaling, compound=_compound, pareto=_pareto, grid=_grid,
    curves=lambda st: curves_section(st.df, max_trials=st.settings.max_curves),
    architecture=lambda st: architecture_section(st.df), models=lambda st: models_section(st.df),
    speed=lambda st: speed_section(st.df, SEPARATION_LEVEL))
"""The sections a kind may name in its ``report_sections``."""


def _settings(df: pd.DataFrame, kind: StudyKind, s: ReportSettings) -> Html:
    best = best_row(df)
    items = [
        ("kind", f"{kind.name} ({kind.title})"),
        ("dataset", ", ".join(sorted(set(map(str, df["dataset"]))))),
        ("finished trials", len(df)),
        ("best network", NO_BEST if best is None else _best_text(df, best)),
        ("FLOPs", f"{si(df['flops'].min())} to {flops(df['flops'].max())} per image"),
        ("input resolution", _span(df["resolution_px"], " px")),
        ("epochs per trial", _span(df["epochs"], "")),
        *_split_sizes(df),
        ("device", ", ".join(sorted(set(map(str, df["device"]))))),
        ("total training time", f"{df['wall_s'].sum() / 3600:.2f} h"),
    ]
    if "at_chance" in df and df["at_chance"].eq(True).any():
        items.append(("at chance", f"{int(df['at_chance'].eq(True).sum())} of {len(df)} trials are within noise of "
                                   "guessing (3 standard errors on their validation split)"))
    if "converged" in df:
        rising, unknown = int(df["converged"].eq(False).sum()), int(df["converged"].isna().sum())
        annealed = "schedule" in df and df["schedule"].isin(["cosine", "linear"]).all()
        why = ("not measured: the learning rate decays to zero there, which alone gains accuracy; the study's "
               "budget check trains the leaders longer" if annealed else "not converged")
        items.append(("convergence", f"{rising} of {len(df)} trials still gained more than 0.5 points in their last "
                                     f"epoch ({why}); {unknown} had one evaluation (not measured)"))
    dims = [str(d) for d in pd.unique(df["dimension"].dropna())]
    if dims:
        items.append(("scaling dimensions", ", ".join(dims)))
    if "scaling" in kind.report_sections:
        fits = (f"{s.n_bootstrap} bootstrap replicates, {100 * s.level:g} % intervals, saturated when doubling "
                f"FLOPs gains < {100 * s.saturation_gain:g} points")
        items.append(("curve fits", fits))
    return tag("dl", join(Html(f"{tag('dt', k)}{tag('dd', v)}") for k, v in items), class_="settings")


def _split_sizes(df: pd.DataFrame) -> list[tuple[str, str]]:
    """How many images an epoch trains on and the validation split holds (a study may train on a share of
    the training images: ``train_fraction``), from the trials' curves; nothing where none was recorded."""
    per_epoch = [c[-1]["images_seen"] / c[-1]["epoch"] for c in df.get("curve", pd.Series(dtype=object))
                 if isinstance(c, list) and c and c[-1].get("epoch")]
    val = df["val_images"].dropna() if "val_images" in df else pd.Series(dtype=float)
    if not per_epoch or val.empty:
        return []
    return [("images", f"{_count_span(per_epoch)} training images per epoch, {_count_span(val)} validation images")]


def _count_span(counts) -> str:
    """'4,800' or '4,800 to 45,000'."""
    lo, hi = round(min(counts)), round(max(counts))
    return f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"


def _best_text(df: pd.DataFrame, best: pd.Series) -> str:
    """The best network and its validation accuracy (the mean over its seeds where it has several)."""
    runs = df.loc[df["model"] == best["model"], "val_acc"]
    if len(runs) == 1:
        return f"{best['model']}, trial {best['trial']}: {pct(best['val_acc'])} validation accuracy"
    return f"{best['model']}: {pct(runs.mean())} validation accuracy, mean of {len(runs)} seeds"


def _span(values: pd.Series, unit: str) -> str:
    lo, hi = (_short(float(v)) for v in (values.min(), values.max()))
    return f"{lo}{unit}" if lo == hi else f"{lo} to {hi}{unit}"


def _short(value: float) -> str:
    """Whole numbers as they are, others to three significant digits (3.98 epochs, not 3.98222)."""
    return f"{value:.0f}" if value == round(value) else f"{value:.3g}"


def _index(df: pd.DataFrame, files: dict[str, str], title: str) -> str:
    rows = []
    for name, file in files.items():
        part = df[df["study"].astype(str) == name]
        best = best_row(part)
        link = Html(f'<a href="{file}">{tag("span", name)}</a>')
        kind, datasets = get_kind(str(part["kind"].iloc[0])).title, ", ".join(sorted(set(map(str, part["dataset"]))))
        named = ["-", NO_BEST, "-"] if best is None else [pct(best["val_acc"]), best["model"], si(best["flops"])]
        rows.append([link, kind, datasets, len(part), *named])
    headers = ["study", "kind", "dataset", "finished trials", "best trial's validation accuracy",
               "best model", "its FLOPs (multiply-adds per image)"]
    how = ("One row per study in the results storage. Open a study for its figures: scaling curves with "
           "fitted saturation curves, the α-β-γ grid, the baseline search's Pareto front, training curves and "
           f"tables. {SPLIT_NOTE}")
    body = join([tag("h1", title), tag("p", f"{_count(len(files), 'study', 'studies')}, {_count(len(df), 'finished trial', 'finished trials')}."),
                 table(headers, rows, numeric=(3, 4, 6)), tag("p", how, class_="how")])
    return page(title, body)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
