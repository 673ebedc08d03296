"""`scalelab bench train`, `bench fit`, `bench curves` and `bench halving`."""

from __future__ import annotations

import statistics
from typing import Annotated, Optional

import typer

from scalelab.cli._app import JsonFlag, bench_app, emit
from scalelab.rounds import DEFAULT_ROUNDS, WIDE_SPREAD, Machine, Spread, warning

Rounds = Annotated[int, typer.Option(min=1, help="Rounds of the compared loops, run alternately; the "
                                      "median and range of their per-round ratio are reported.")]


@bench_app.command("train")
def bench_train_command(
    models: Annotated[Optional[list[str]], typer.Argument(help="Presets (default: baseline_convnet efficientnet_b0_32).")] = None,
    dataset: Annotated[str, typer.Option(help="Dataset to read images from.")] = "cifar10-mini",
    data_dir: Annotated[Optional[str], typer.Option(help="Data root.")] = None,
    images: Annotated[int, typer.Option(min=1, help="Timed training images per loop and round.")] = 1024,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers of the reference loop (the tutorials use 2).")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    rounds: Rounds = DEFAULT_ROUNDS,
    as_json: JsonFlag = False,
) -> None:
    """Images/s of scalelab's trainer vs a tutorial-style DataLoader loop, and achieved model FLOP/s, as
    medians of per-round ratios over alternating rounds."""
    from scalelab.arch.zoo import resolve
    from scalelab.bench import bench_train
    from scalelab.cost import check_fits
    from scalelab.data import load_dataset, split_validation
    from scalelab.device import announce_threads, pick_device

    dev = pick_device(device)
    data = load_dataset(dataset, data_dir)
    specs = [resolve(name, data.num_classes) for name in models or ["baseline_convnet", "efficientnet_b0_32"]]
    for spec in specs:
        check_fits(spec, batch_size=batch_size, training=True, device=dev)
    splits = split_validation(data, 0.1, 0)
    announce_threads(dev, 1, progress=False)  # both loops on the cores others leave free; said in the report
    before = Machine.now()
    benches = [bench_train(spec, splits, images=images, batch_size=batch_size, workers=workers,
                           device=str(dev), rounds=rounds) for spec in specs]
    after = Machine.now()
    rows, warnings = [], []
    lines = [f"device {dev}; torch uses {before.torch_threads} threads on {before.cores} cores; {rounds} rounds "
             f"of {images:,} timed images per loop", _load_line(before, after)]
    for b in benches:
        per_round = {"scalelab_fp32": b.scalelab_images_per_s, "scalelab_bf16": b.scalelab_bf16_images_per_s,
                     "reference": b.reference_images_per_s}
        medians = {k: statistics.median(v) for k, v in per_round.items() if v is not None}
        rows.append({"model": b.model, "batch_size": b.batch_size, "flops_per_image_multiply_adds": b.flops_per_image,
                     "images_per_s_per_round": {k: list(v) for k, v in per_round.items() if v is not None},
                     "images_per_s_median": medians,
                     "matmul_gflop_per_s_per_round": [f / 1e9 for f in b.matmul_flops],
                     "fp32_ratio": b.fp32_ratio.to_dict(),
                     "bf16_ratio": b.bf16_ratio.to_dict() if b.bf16_ratio else None,
                     "best_setting": b.best_setting, "best_ratio": b.speedup.to_dict(),
                     "model_flops_over_matmul": b.matmul_share.to_dict()})
        lines.append(f"{b.model} (batch {b.batch_size}, {b.flops_per_image / 1e6:,.1f} M multiply-adds per image), "
                     "median images/s over the rounds: "
                     + ", ".join(f"{k.replace('_', ' ')} {v:,.0f} images/s" for k, v in medians.items()))
        lines.append(f"  scalelab fp32 / reference: {b.fp32_ratio.text('x')}")
        if b.bf16_ratio is not None:
            lines.append(f"  scalelab bf16 / reference: {b.bf16_ratio.text('x')}")
        lines.append(f"  dense fp32 matrix multiply: {Spread(b.matmul_flops).scaled(1e-9).text(' GFLOP/s', ',.1f')}")
        lines.append(f"  model FLOP/s ({b.best_setting}) / matrix-multiply FLOP/s: "
                     f"{b.matmul_share.scaled(100).text('%', '.0f')}")
        for what, spread in (("fp32", b.fp32_ratio), ("bf16", b.bf16_ratio)):
            line = warning(f"{b.model}'s {what} ratio to the reference", spread) if spread else None
            if line:
                warnings.append(line)
    emit({"device": str(dev), "rounds": rounds, "images_per_loop": images, "wide_spread": WIDE_SPREAD,
          "machine_before": before.to_dict(), "machine_after": after.to_dict(), "models": rows,
          "warnings": warnings}, as_json, "\n".join(lines + warnings))
    if as_json:
        for line in warnings:
            typer.echo(line, err=True)


def _load_line(before: Machine, after: Machine) -> str:
    return (f"load average (1 / 5 / 15 min): {before.load_text()} before, {after.load_text()} after "
            "(after includes this benchmark)")


@bench_app.command("fit")
def bench_fit_command(
    file: Annotated[str, typer.Argument(help="CSV of learning curves (format: README, 'Scoring the fitter').")],
    key: Annotated[str, typer.Option(help="Comma-separated columns that name a curve.")] = "Domain,Task,Model",
    x: Annotated[str, typer.Option(help="Column of x (examples seen, compute, ...).")] = "Seen Examples",
    y: Annotated[str, typer.Option(help="Column of y (a positive loss or error; lower is better).")] = "Loss",
    train: Annotated[str, typer.Option(help="Column that is 1 for rows to fit, 0 for rows to predict.")] = "Training",
    level: Annotated[float, typer.Option(help="Nominal coverage of the predictive intervals.")] = 0.95,
    per_curve: Annotated[bool, typer.Option("--per-curve", help="Also print the score of every curve.")] = False,
    peers: Annotated[bool, typer.Option("--peers", help="Also score extrapolation from peers: the ratios the other curves of the same first key column (a study's trials, on one schedule) show between the same x.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Extrapolation error (log-RMSE), wins, interval coverage and CPU seconds per fit of scalelab's fitter
    and two baselines (last value; E + A*x^-a in log space) on held-out rows of real curves."""
    from scalelab.analysis.fit_bench import PREDICTORS, BenchError, format_summary, peer_predictor, read_curves, score

    if not 0.0 < level < 1.0:
        raise typer.BadParameter("level must be between 0 and 1")
    try:
        curves = read_curves(file, key=[k.strip() for k in key.split(",") if k.strip()], x=x, y=y, train=train)
    except BenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    predictors = {**PREDICTORS, "peers": peer_predictor(curves)} if peers else PREDICTORS
    rows, summary = score(curves, predictors, level=level)
    text = f"{file}: {len(curves)} curves; fit on {train} = 1, predict {train} = 0\n" + format_summary(summary, level)
    if per_curve:
        wide = rows.pivot(index="curve", columns="method", values="log_rmse").reindex(rows["curve"].unique())
        text += "\n\nlog-RMSE per curve\n" + wide.to_string(float_format=lambda v: f"{v:.4f}")
        notes = rows[rows["note"].str.startswith("refused")]
        if not notes.empty:
            text += "\n\n" + "\n".join(f"{r.method} on {r.curve}: {r.note}" for r in notes.itertuples())
    emit(dict(file=file, level=level, summary=summary.to_dict(orient="records"),
              curves=rows.to_dict(orient="records")), as_json, text)


@bench_app.command("curves")
def bench_curves_command(
    storage: Annotated[str, typer.Option(help="Results storage (SQLite file or database URL).")],
    out: Annotated[str, typer.Option(help="CSV file to write, in the `bench fit` format.")],
    x: Annotated[str, typer.Option(help="images_seen or epoch.")] = "images_seen",
    fit_share: Annotated[float, typer.Option(help="Share of each curve's points to fit; the rest is predicted.")] = 0.6,
) -> None:
    """Write the per-evaluation validation-error curves of a results storage as a `bench fit` CSV."""
    from pathlib import Path

    from scalelab.analysis.fit_bench import BenchError, curves_csv

    try:
        table = curves_csv(storage, x=x, fit_share=fit_share)
    except BenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    Path(out).write_text(table.to_csv(index=False))
    n = table.groupby(["Domain", "Task"]).ngroups if not table.empty else 0
    typer.echo(f"wrote {len(table)} rows, {n} curves with at least two evaluations, to {out}")


@bench_app.command("halving")
def bench_halving_command(
    storage: Annotated[str, typer.Option(help="Results storage (SQLite file or database URL).")],
    study: Annotated[str, typer.Option(help="A study whose trials were all trained to the end (no --halving).")],
    rate: Annotated[int, typer.Option(help="Halving rate: the best 1/rate go on at each rung.")] = 3,
    min_epochs: Annotated[int, typer.Option(help="First rung, in epochs.")] = 1,
    level: Annotated[float, typer.Option(help="Confidence of the interval that must fall short to stop a network.")] = 0.95,
    orders: Annotated[int, typer.Option(min=1, help="Orders of the trials to replay: the study's own, then random ones.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the random orders.")] = 0,
    sync: Annotated[bool, typer.Option("--sync/--async", help="Synchronous halving (every network judged at each "
                                                            "rung; one outcome, whatever the order).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Successive halving replayed on a study trained in full: the trial-epochs it would have trained and
    whether it would have kept the study's winner, over many orders of the trials."""
    from scalelab.analysis.results import results_table
    from scalelab.errors import ScalelabError
    from scalelab.search.halving import HalvingSettings
    from scalelab.search.halving_replay import ReplayCurve, replay

    try:
        settings = HalvingSettings(enabled=True, rate=rate, min_epochs=min_epochs, level=level, synchronous=sync)
        table = results_table(storage)
        rows = table[table["study"] == study]
        if rows.empty:
            names = ", ".join(sorted(table["study"].unique())) or "none"
            raise ScalelabError(f"no study '{study}' in {storage}; its studies: {names}")
        if (rows["status"] == "pruned").any():
            raise ScalelabError(f"study '{study}' has trials stopped early; replaying halving needs every trial "
                                "trained to the end")
        curves = [ReplayCurve(r.model, tuple(p["val_acc"] for p in sorted(r.curve, key=lambda p: p["epoch"])))
                  for r in rows[rows["status"] == "complete"].itertuples()]
        result = replay(curves, settings, orders=orders, seed=seed)
    except ScalelabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    emit(dict(study=study, rate=rate, min_epochs=min_epochs, level=level, synchronous=sync, epochs=result.epochs,
              trials=result.trials, networks=result.networks, winner=result.winner,
              full_trial_epochs=result.full_trial_epochs, trial_epochs_per_order=list(result.trial_epochs),
              same_winner_per_order=list(result.same_winner), accuracy_lost_per_order=list(result.loss)), as_json, f"{study}: " + result.text())
