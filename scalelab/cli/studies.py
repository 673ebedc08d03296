"""Searches and scaling studies (scalelab.search): search baseline, grid, scale, sweep, compare, run,
worker, results and report."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from scalelab.cli._app import JsonFlag, app, emit, search_app
from scalelab.errors import ScalelabError

# Where the commands that read an existing study (worker, results, report) find its storage.
_StorageOption = Annotated[Optional[str], typer.Option(
    help="SQLAlchemy URL or SQLite file (default <run-dir>/scalelab.db).")]
_RunDirOption = Annotated[str, typer.Option(help="Folder holding the default storage (default runs).")]

# (parameter, type, option, where the value goes in the study settings) for every study command.
_STUDY_FLAGS = [
    ("dataset", str, typer.Option(help="Dataset name (default cifar10-mini)."), ("dataset",)),
    ("data_dir", str, typer.Option(help="Data root (default: $SCALELAB_DATA, then the user cache)."), ("data_dir",)),
    ("epochs", float, typer.Option(help="Epochs per trial (default 10)."), ("train", "epochs")),
    ("max_images", int, typer.Option(min=1, help="Training images per trial."), ("train", "max_images")),
    ("max_seconds", float, typer.Option(help="Seconds of training per trial."), ("train", "max_seconds")),
    ("batch_size", int, typer.Option(min=1, help="Training batch size (default 128)."), ("train", "batch_size")),
    ("seed", int, typer.Option(help="Seed of the validation split, training and sampler."), ("train", "seed")),
    ("seeds", int, typer.Option(help="Replicates of every network, with seeds --seed, --seed + 1, ... (default 1); "
                                     "resuming with more adds replicates."), ("seeds",)),
    ("budget", str, typer.Option(help="The whole study's budget: trial time summed over trials (60m, 1.5h) or "
                                      "trial-epochs (200 epochs); kept on resume (default: none)."), ("budget",)),
    ("fill_budget", bool, typer.Option("--fill-budget/--no-fill-budget",
                                       help="With --budget: raise --seeds to the most whose trials all fit it, "
                                            "from this machine's trial times (sized again on resume)."),
     ("fill_budget",)),
    ("settle_after", int, typer.Option(help="Grid or sweep: train seeds past this many only while the question "
                                            "is open (the winner not yet separated from every other network; "
                                            "compound not yet decided against every single dimension; default 0: "
                                            "train every seed)."),
     ("settle_after",)),
    ("val_fraction", float, typer.Option(help="Share of each class held out for validation (default 0.1)."),
     ("val_fraction",)),
    ("train_fraction", float, typer.Option(help="Share of each class's other training images that trials train "
                                                "on (default 1: all)."), ("train_fraction",)),
    ("evaluate_test", bool, typer.Option("--evaluate-test/--no-evaluate-test",
                                         help="Also evaluate the test split at the end of each trial."),
     ("evaluate_test",)),
    ("heartbeat", int, typer.Option(min=1, help="Seconds between heartbeats of a running trial; a trial silent "
                                                "3x as long is re-run (default 20)."), ("heartbeat_s",)),
    ("device", str, typer.Option(help="auto, cpu or cuda."), ("device",)),
    ("storage", str, typer.Option(help="SQLAlchemy URL or SQLite file (default <run-dir>/scalelab.db)."), ("storage",)),
    ("study", str, typer.Option(help="Study name (default: made from the settings)."), ("study",)),
    ("run_dir", str, typer.Option(help="Folder for the default storage and result files (default runs)."),
     ("run_dir",)),
    ("workers", int, typer.Option(min=1, help="Worker processes on this machine (default 1)."), ("workers",)),
    ("progress", bool, typer.Option("--progress/--no-progress", help="Print progress per epoch and trial."),
     ("progress",)),
]
# The network a study starts from, and its scaling before the study scales it further.
_BASE_FLAGS = [
    ("base", str, typer.Option(help="Preset or spec JSON the study starts from (default efficientnet_b0_32)."),
     ("base", "name")),
    ("base_depth", float, typer.Option(help="Depth multiplier applied to the base network first."),
     ("base", "depth")),
    ("base_width", float, typer.Option(help="Width multiplier applied to the base network first."),
     ("base", "width")),
    ("base_resolution", int, typer.Option(min=1, help="Input size in px of the base network."),
     ("base", "resolution_px")),
    ("layer_rounding", str, typer.Option(help="How scaling rounds layer counts: up (the reference "
                                              "EfficientNet rule, default) or nearest."),
     ("base", "layer_rounding")),
]
# Multi-fidelity for the studies of listed networks.
_HALVING_FLAGS = [
    ("halving", bool, typer.Option("--halving/--no-halving",
                                   help="Successive halving over the networks: rungs at 1, 3, 9, ... epochs; a "
                                        "network goes on while its predicted accuracy at the end of its budget could be among "
                                        "the best third at its rung ([halving] in a study file)."),
     ("halving", "enabled")),
    ("halving_sync", bool, typer.Option("--halving-sync/--halving-async",
                                        help="Synchronous halving: every network trains to a rung and waits there (its "
                                             "training state saved) until all have, so the first networks are "
                                             "judged too ([halving] synchronous = true)."),
     ("halving", "synchronous")),
]
# Compound coefficients for `scale` and `sweep`.
_COEFF_FLAGS = [
    ("alpha", float, typer.Option(help="Depth base (default 1.2)."), ("search", "alpha")),
    ("beta", float, typer.Option(help="Width base (default 1.1)."), ("search", "beta")),
    ("gamma", float, typer.Option(help="Resolution base (default 1.15)."), ("search", "gamma")),
    ("coefficients", str, typer.Option(help="alpha, beta, gamma from the JSON `scalelab grid` saved."),
     ("search", "coefficients")),
]


# Flags whose settings key is named otherwise (what error messages call them).
SEARCH_FLAG_NAMES = {"search.target": "--target-flops", "search.targets": "--target-flops", "search.phis": "--phi-max",
                     "search.alpha": "--alpha", "search.beta": "--beta", "search.gamma": "--gamma"}


def _study_flags(*groups: list) -> Any:
    """Add shared flags to a study command; their given values reach it as the nested dict ``flags``
    (the shape of a study file), so flags override a file key by key."""
    import functools
    import inspect

    specs = [s for group in groups for s in group]

    def decorate(func: Any) -> Any:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name not in ("flags", "names")]
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=Annotated[Optional[kind], option])
                 for name, kind, option, _ in specs]
        extra.append(inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False,
                                       annotation=JsonFlag))

        @functools.wraps(func)
        def command(**kwargs: Any) -> None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)  # scalelab prints its own progress
            as_json = kwargs.pop("as_json")
            flags: dict[str, Any] = {}
            for name, _, _, where in specs:
                value = kwargs.pop(name)
                if value is not None:
                    table = flags.setdefault(where[0], {}) if len(where) == 2 else flags
                    table[where[-1]] = value
            if as_json:
                flags.setdefault("progress", False)
            names = {".".join(where): f"--{name.replace('_', '-')}" for name, _, _, where in specs}
            summary = func(**kwargs, flags=flags, names={**SEARCH_FLAG_NAMES, **names})
            emit(summary.data, as_json, summary.text())

        command.__signature__ = sig.replace(parameters=own + extra)
        return command

    return decorate


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _with(flags: dict[str, Any], **tables: dict[str, Any]) -> dict[str, Any]:
    """``flags`` with more values merged into its tables (``search``, ``model``) or top level."""
    out = dict(flags)
    for key, value in tables.items():
        if isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}
        elif value is not None:
            out[key] = value
    return out


def _list(values: Optional[list[str]], convert: Any = str) -> Optional[list]:
    """Repeated or comma-separated values ('--multiples 1,2,4' or '--multiples 1 --multiples 2')."""
    if not values:
        return None
    try:
        return [convert(v.strip()) for item in values for v in item.split(",") if v.strip()]
    except ValueError as exc:
        raise ScalelabError(f"cannot read the list {','.join(values)}: {exc}") from exc


def _range(text: Optional[str], name: str) -> Optional[list[float]]:
    """'1:2' -> [1.0, 2.0]."""
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError as exc:
        raise ScalelabError(f"--{name} must be LOW:HIGH, such as 1:2; got '{text}'") from exc
    return [low, high]


Target = Annotated[Optional[str], typer.Option(help="FLOPs target: a multiple of the baseline (2x) or multiply-adds (800M, 1.2G).")]
Prune = Annotated[Optional[bool], typer.Option("--prune/--no-prune", help="Stop trials below the median early.")]


@search_app.command("baseline")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS)
def search_baseline_command(
    trials: Annotated[Optional[int], typer.Option(min=1, help="Trials to finish, pruned ones included (default 20).")] = None,
    objective: Annotated[Optional[str], typer.Option(help="reward: ACC x (cost/T)^w (default); pareto: accuracy vs cost.")] = None,
    cost: Annotated[Optional[str], typer.Option(help="flops (multiply-adds, default) or latency (ms, batch 1).")] = None,
    target_flops: Annotated[Optional[str], typer.Option(help="T of the reward: a multiple of the skeleton (1x, default) or multiply-adds (30M).")] = None,
    target_latency: Annotated[Optional[str], typer.Option(help="T with --cost latency: a multiple of the skeleton's (1x) or ms (5ms).")] = None,
    w: Annotated[Optional[float], typer.Option("--w", help="Reward exponent (default -0.07).")] = None,
    max_flops: Annotated[Optional[str], typer.Option(help="Hard cap: multiply-adds (40M) or multiple of the skeleton (1.5x).")] = None,
    max_memory: Annotated[Optional[str], typer.Option(help="Hard cap on training-step memory: bytes (2G) or multiple of the skeleton's.")] = None,
    prune: Prune = None,
    out: Annotated[Optional[str], typer.Option(help="Best spec JSON (default: <run-dir>/<study>/best.json).")] = None,
    flags: Optional[dict] = None,
    names: Optional[dict] = None,
) -> Any:
    """MnasNet-style search for a baseline network around a skeleton (see scalelab.search.space)."""
    from scalelab.search import run_kind

    if target_flops and target_latency:
        raise ScalelabError("give --target-flops or --target-latency, not both")
    search = _given(trials=trials, objective=objective, cost=cost, target=target_flops or target_latency, w=w,
                    max_flops=max_flops, max_memory=max_memory, prune=prune)
    if target_latency:
        names = {**names, "search.target": "--target-latency"}
    return run_kind("baseline", _with(flags, search=search, out=out), names)


@app.command("grid")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS, _HALVING_FLAGS)
def grid_command(
    target_flops: Target = None,
    alpha: Annotated[Optional[str], typer.Option(help="alpha range LOW:HIGH (default 1:2).")] = None,
    beta: Annotated[Optional[str], typer.Option(help="beta range LOW:HIGH (default 1:1.5).")] = None,
    gamma: Annotated[Optional[str], typer.Option(help="gamma range LOW:HIGH (default 1:1.5).")] = None,
    step: Annotated[Optional[float], typer.Option(help="Grid step (default 0.1).")] = None,
    tolerance: Annotated[Optional[float], typer.Option(help="Relative tolerance on alpha*beta^2*gamma^2 = K (default 0.05).")] = None,
    measured_tolerance: Annotated[Optional[float], typer.Option(help="Relative tolerance on the measured FLOPs ratio (default 0.10).")] = None,
    prune: Prune = None,
    out: Annotated[Optional[str], typer.Option(help="Coefficients JSON (default: <run-dir>/<study>/coefficients.json).")] = None,
    flags: Optional[dict] = None,
    names: Optional[dict] = None,
) -> Any:
    """Grid search of alpha, beta, gamma with alpha*beta^2*gamma^2 = K (default 2x the baseline FLOPs)."""
    from scalelab.search import run_kind

    search = _given(target=target_flops, alpha=_range(alpha, "alpha"), beta=_range(beta, "beta"),
                    gamma=_range(gamma, "gamma"), step=step, tolerance=tolerance,
                    measured_tolerance=measured_tolerance, prune=prune)
    return run_kind("grid", _with(flags, search=search, out=out), names)


@app.command("scale")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS, _COEFF_FLAGS, _HALVING_FLAGS)
def scale_command(
    phi_max: Annotated[Optional[int], typer.Option(min=1, help="Train phi = 1..N (default 3).")] = None,
    target_flops: Annotated[Optional[list[str]], typer.Option(help="FLOPs targets instead of phis: 4x,8x or 800M (repeatable).")] = None,
    flags: Optional[dict] = None,
    names: Optional[dict] = None,
) -> Any:
    """Train the compound-scaled family of a baseline: d, w, r = alpha^phi, beta^phi, gamma^phi."""
    from scalelab.search import run_kind

    search = _given(phis=list(range(1, phi_max + 1)) if phi_max else None, targets=_list(target_flops))
    return run_kind("family", _with(flags, search=search), names)


@app.command("sweep")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS, _COEFF_FLAGS, _HALVING_FLAGS)
def sweep_command(
    multiples: Annotated[Optional[list[str]], typer.Option(help="FLOPs multiples K (default 1,2,4,8).")] = None,
    dimensions: Annotated[Optional[list[str]], typer.Option(help="Of width, depth, resolution, compound (default all).")] = None,
    add: Annotated[Optional[list[str]], typer.Option(help="One more network, DIMENSION:K (e.g. compound:3.3), beyond every dimension at every multiple; repeatable. Resuming a sweep with more multiples, dimensions or added networks trains only the new ones.")] = None,
    flags: Optional[dict] = None,
    names: Optional[dict] = None,
) -> Any:
    """Width-only (w = sqrt K), depth-only (d = K), resolution-only (r = sqrt K) and compound scaling at
    matched FLOPs multiples K."""
    from scalelab.search import run_kind

    search = _given(multiples=_list(multiples, float), dimensions=_list(dimensions), add=_list(add))
    return run_kind("sweep", _with(flags, search=search), names)


@app.command("compare")
@_study_flags(_STUDY_FLAGS, _HALVING_FLAGS)
def compare_command(
    models: Annotated[list[str], typer.Argument(help="Presets or spec JSON files.")],
    flags: Optional[dict] = None,
    names: Optional[dict] = None,
) -> Any:
    """Train several networks under one recipe, recorded as a study of kind 'compare'."""
    from scalelab.search import run_kind

    return run_kind("compare", _with(flags, search={"models": models}), names)


@app.command("run")
@_study_flags(_STUDY_FLAGS, _HALVING_FLAGS)
def run_command(
    study_file: Annotated[str, typer.Argument(help="A study file, such as studies/smoke_grid.toml.")],
    trials: Annotated[Optional[int], typer.Option(min=1, help="Trials to finish (baseline searches).")] = None,
    profile: Annotated[Optional[str], typer.Option(help="Budget profile of the file: smoke, cpu or gpu.")] = None,
    prune: Annotated[Optional[bool], typer.Option("--prune/--no-prune", help="Baseline searches and grids: stop "
                                                  "trials below the median early (default: the file's).")] = None,
    flags: Optional[dict] = None,
    names: Optional[dict] = None,
) -> Any:
    """Run (or resume) the study a TOML file describes; flags override the file."""
    from scalelab.search import run_file

    if prune is not None:  # named as given, should the file's kind take no such setting
        names = {**(names or {}), "search.prune": "--prune" if prune else "--no-prune"}
    return run_file(study_file, _with(flags, search=_given(trials=trials, prune=prune)), profile, names)


@app.command("plan")
def plan_command(
    study_file: Annotated[str, typer.Argument(help="A study file, such as studies/cifar10_sweeps.toml.")],
    profile: Annotated[Optional[str], typer.Option(help="Budget profile of the file: smoke, cpu or gpu.")] = None,
    seeds: Annotated[Optional[int], typer.Option(min=1, help="Replicates of every network (default: the file's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[str], typer.Option(help="Where the study's dataset lies on this machine.")] = None,
    budget: Annotated[Optional[str], typer.Option(help="A budget to check the plan against (60m, 200 epochs; "
                                                       "default: the file's).")] = None,
    halving: Annotated[Optional[bool], typer.Option("--halving/--no-halving", help="Estimate the study run with "
                                                    "successive halving, or without (default: the file's).")] = None,
    halving_sync: Annotated[Optional[bool], typer.Option("--halving-sync/--halving-async", help="With halving: "
                                                         "estimate it synchronous or asynchronous (default: the "
                                                         "file's).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """What a study file would train, how long it would take here (a short measured throughput), how much
    of it a budget fits and the smallest accuracy difference its seeds could resolve; writes nothing."""
    from scalelab.device import pick_device
    from scalelab.search import build, load_study_file
    from scalelab.search.preview import preview

    flags = _given(seeds=seeds, data_dir=data_dir, budget=budget)
    halving_flags = {"enabled": halving, "synchronous": halving_sync}
    if any(v is not None for v in halving_flags.values()):
        flags["halving"] = {k: v for k, v in halving_flags.items() if v is not None}
    config, _ = build(load_study_file(study_file, profile), flags, source=study_file,
                      flag_names={"halving.enabled": "--halving", "halving.synchronous": "--halving-sync"})
    summary = preview(config, pick_device(device))
    emit(summary.data, as_json, summary.text())


@app.command("worker")
def worker_command(
    study: Annotated[str, typer.Option(help="Name of the study to join.")],
    storage: _StorageOption = None,
    run_dir: _RunDirOption = "runs",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[str], typer.Option(help="Where the study's dataset lies on this machine.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Print progress.")] = True,
) -> None:
    """Join an existing study as one more worker (from any machine that reaches its storage)."""
    import optuna

    from scalelab.search import join_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ran = join_study(study, storage, run_dir=run_dir, device=device, progress=progress, data_dir=data_dir)
    typer.echo(f"worker finished: ran {ran} trial(s) of study '{study}'")


@app.command("results")
def results_command(
    study: Annotated[Optional[str], typer.Option(help="Study name (default: every study in the storage).")] = None,
    storage: _StorageOption = None,
    run_dir: _RunDirOption = "runs",
    csv: Annotated[Optional[str], typer.Option(help="Also write the full table (curve and spec as JSON) here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The tidy table of recorded trials, rebuilt from the storage (one row per trial, with its status)."""
    import pandas as pd

    from scalelab.analysis.results import overhead_line, results_table
    from scalelab.files import check_writable_file, write_text_atomic
    from scalelab.search.storage import storage_url

    if csv:
        check_writable_file(csv, what="--csv file")
    table = results_table(storage_url(storage, run_dir), study)
    if csv:
        full = table.assign(curve=table["curve"].map(json.dumps), spec=table["spec"].map(json.dumps))
        write_text_atomic(csv, full.to_csv(index=False))
    if as_json:
        typer.echo(table.to_json(orient="records", indent=2))
    else:
        with pd.option_context("display.max_columns", None, "display.width", 200):
            shown = table.drop(columns=["curve", "spec"])
            typer.echo(shown.to_string(index=False) if len(shown) else "no recorded trials")
        line = overhead_line(table)
        if line:
            typer.echo(line)
    if csv:
        typer.echo(f"Saved {len(table)} rows to {csv}", err=as_json)


@app.command("migrate")
def migrate_command(
    storage: _StorageOption = None,
    run_dir: _RunDirOption = "runs",
) -> None:
    """Convert the studies of a storage made by scalelab 0.1 (string-keyed trial attributes) to trial
    records, once, in place; studies already converted are left as they are."""
    from scalelab.search.migrate import migrate_storage
    from scalelab.search.storage import storage_url

    converted = migrate_storage(storage_url(storage, run_dir))
    typer.echo(f"converted {len(converted)} studies" + (f": {', '.join(converted)}" if converted else ""))


@app.command("report")
def report_command(
    out: Annotated[str, typer.Option(help="Folder for the HTML pages (created if needed).")] = "reports",
    study: Annotated[Optional[str], typer.Option(help="Report only this study (default: every study).")] = None,
    storage: _StorageOption = None,
    run_dir: _RunDirOption = "runs",
    title: Annotated[str, typer.Option(help="Title of the index page.")] = "scalelab report",
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap replicates per fitted curve.")] = 200,
) -> None:
    """Write static HTML pages (figures, fits, tables) of the studies in the storage; they work offline."""
    from pathlib import Path

    from scalelab.analysis.results import judged_levels, results_table, search_rewards
    from scalelab.report import ReportSettings, write_site
    from scalelab.search.storage import storage_url

    storage = storage_url(storage, run_dir)
    settings = ReportSettings(n_bootstrap=bootstrap, rewards=search_rewards(storage),
                              judged_levels=judged_levels(storage))
    files = write_site(results_table(storage, study), Path(out), title=title, settings=settings)
    typer.echo(f"Wrote {len(files)} files to {Path(out)}; open {files[0]} in a browser")
