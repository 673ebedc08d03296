"""The `scalelab` command line: a thin view over the library (parse flags, call, print)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer

from scalelab.errors import ScalelabError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Experiments on how ConvNets should be scaled.")
models_app = typer.Typer(no_args_is_help=True, help="Named model presets.")
app.add_typer(models_app, name="models")
bench_app = typer.Typer(no_args_is_help=True, help="Throughput benchmarks for this machine.")
app.add_typer(bench_app, name="bench")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Classes = Annotated[Optional[int], typer.Option("--classes", "-k", min=2,
                                                help="Number of classes (default: the preset's).")]


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def _cost_lines(spec, c) -> list[str]:
    from scalelab.units import si

    lines = [f"Parameters: {c.params:,} ({si(c.params, 'parameters')})",
             f"FLOPs:      {c.flops:,} multiply-adds per image at {spec.resolution}x{spec.resolution} px "
             f"({si(c.flops, 'multiply-adds')})"]
    if c.uncounted_ops:
        lines.append(f"Not counted (fvcore has no rule for them): {', '.join(c.uncounted_ops)}")
    return lines


@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """List the presets with their input resolution and operators."""
    from scalelab.arch.zoo import get_preset, preset_names

    rows = []
    for name in preset_names():
        spec = get_preset(name)
        rows.append(dict(name=name, resolution_px=spec.resolution,
                         operators=sorted({st.block for st in spec.stages}),
                         layers=sum(st.layers for st in spec.stages)))
    text = "\n".join(f"{r['name']:<24} {r['resolution_px']:>4} px  {r['layers']:>3} layers  "
                     f"{'+'.join(r['operators'])}" for r in rows)
    _emit(rows, as_json, text)


@models_app.command("show")
def models_show(name: str, classes: Classes = None, as_json: JsonFlag = False) -> None:
    """Show a preset as the seed's Table 1, with its parameters and FLOPs."""
    _describe(name, classes=classes, as_json=as_json)


@app.command("cost")
def cost_command(
    name: Annotated[str, typer.Argument(help="Preset name or spec JSON file.")],
    classes: Classes = None,
    resolution: Annotated[Optional[int], typer.Option(min=1, help="Input size in px (after scaling).")] = None,
    width: Annotated[float, typer.Option(help="Width (channel) multiplier w.")] = 1.0,
    depth: Annotated[float, typer.Option(help="Depth (layer) multiplier d.")] = 1.0,
    alpha: Annotated[Optional[float], typer.Option(help="Compound depth base (default 1.2).")] = None,
    beta: Annotated[Optional[float], typer.Option(help="Compound width base (default 1.1).")] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Compound resolution base (default 1.15).")] = None,
    phi: Annotated[Optional[float], typer.Option(help="Compound coefficient: d, w, r = alpha^phi, beta^phi, gamma^phi.")] = None,
    latency: Annotated[bool, typer.Option("--latency", help="Also time inference and size a training step.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Larger batch for --latency.")] = 64,
    device: Annotated[str, typer.Option(help="Device for --latency: cpu, cuda or auto.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Parameters, FLOPs (multiply-adds) and optionally latency of a preset, scaled as asked."""
    _describe(name, classes=classes, resolution=resolution, width=width, depth=depth, alpha=alpha,
              beta=beta, gamma=gamma, phi=phi, latency=latency, batch_size=batch_size, device=device,
              as_json=as_json)


@app.command("family")
def family_command(
    name: Annotated[str, typer.Argument(help="Baseline preset name or spec JSON file.")],
    alpha: Annotated[float, typer.Option(help="Depth base.")] = 1.2,
    beta: Annotated[float, typer.Option(help="Width base.")] = 1.1,
    gamma: Annotated[float, typer.Option(help="Resolution base.")] = 1.15,
    phi_max: Annotated[int, typer.Option(min=1, max=12, help="Largest compound coefficient.")] = 3,
    classes: Classes = None,
    as_json: JsonFlag = False,
) -> None:
    """Cost of the compound-scaled family phi = 0..N: measured FLOPs growth next to the predicted
    (alpha * beta^2 * gamma^2)^phi. No training."""
    from scalelab.arch.scaling import compound_family
    from scalelab.arch.zoo import resolve
    from scalelab.cost import cost

    base = resolve(name, classes)
    rows = []
    for phi, scale, spec in compound_family(base, alpha, beta, gamma, list(range(phi_max + 1))):
        c = cost(spec)
        rows.append(dict(phi=phi, depth=scale.depth, width=scale.width, resolution=scale.resolution,
                         resolution_px=spec.resolution, params=c.params, flops_multiply_adds=c.flops,
                         predicted_ratio=scale.flops_multiplier,
                         measured_ratio=c.flops / rows[0]["flops_multiply_adds"] if rows else 1.0))
    header = (f"{'phi':>3} {'d':>6} {'w':>6} {'r':>6} {'px':>4} {'params':>12} "
              f"{'FLOPs (multiply-adds)':>22} {'measured x':>10} {'predicted x':>11}")
    text = "\n".join([header] + [
        f"{r['phi']:>3} {r['depth']:>6.3f} {r['width']:>6.3f} {r['resolution']:>6.3f} "
        f"{r['resolution_px']:>4} {r['params']:>12,} {r['flops_multiply_adds']:>22,} "
        f"{r['measured_ratio']:>10.3f} {r['predicted_ratio']:>11.3f}" for r in rows])
    _emit(rows, as_json, text)


@app.command("train")
def train_command(
    model: Annotated[str, typer.Argument(help="Preset name or spec JSON file.")],
    dataset: Annotated[str, typer.Option(help="cifar10-mini, cifar10, cifar10-3class, cifar100, imagefolder:PATH.")] = "cifar10-mini",
    data_dir: Annotated[Optional[str], typer.Option(help="Data root (default: $SCALELAB_DATA, then the user cache).")] = None,
    download: Annotated[bool, typer.Option("--download", help="Fetch missing official archives.")] = False,
    epochs: Annotated[Optional[float], typer.Option(help="Budget in epochs (default 10 when no other budget).")] = None,
    max_images: Annotated[Optional[int], typer.Option(help="Budget in training images.")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="Budget in seconds of training.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    optimizer: Annotated[str, typer.Option(help="adam or sgd (Nesterov).")] = "adam",
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 1e-3 Adam, 0.1*batch/256 SGD).")] = None,
    weight_decay: Annotated[float, typer.Option()] = 5e-5,
    warmup: Annotated[float, typer.Option(help="Fraction of the budget for linear warm-up.")] = 0.05,
    label_smoothing: Annotated[float, typer.Option()] = 0.0,
    augment: Annotated[str, typer.Option(help="affine (rotation/shift/zoom/flip), crop or none.")] = "affine",
    dropout: Annotated[Optional[float], typer.Option(help="Override the head dropout.")] = None,
    drop_path: Annotated[Optional[float], typer.Option(help="Override the stochastic-depth rate.")] = None,
    resolution: Annotated[Optional[int], typer.Option(min=1, help="Input size in px (default: the model's).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of each training class held out for validation.")] = 0.1,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    amp: Annotated[Optional[bool], typer.Option("--amp/--no-amp", help="bfloat16 autocast (default: on CUDA only).")] = None,
    test: Annotated[bool, typer.Option("--test/--no-test", help="Evaluate the test split once at the end.")] = True,
    out: Annotated[Optional[str], typer.Option(help="Write the JSON result to this file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train one model with the short-trial trainer and report its accuracy curve."""
    from pathlib import Path

    from scalelab.arch.zoo import make_spec
    from scalelab.data import load_dataset, split_validation
    from scalelab.device import pick_device
    from scalelab.train import TrainConfig, train

    dev = pick_device(device)
    data = load_dataset(dataset, data_dir, download=download)
    spec = make_spec(model, num_classes=data.num_classes, resolution=resolution)
    budgets = dict(epochs=epochs, max_images=max_images, max_seconds=max_seconds)
    if all(v is None for v in budgets.values()):
        budgets["epochs"] = 10.0
    elif epochs is None:
        budgets["epochs"] = float("inf")
    config = TrainConfig(**budgets, batch_size=batch_size, optimizer=optimizer, lr=lr,
                         weight_decay=weight_decay, warmup=warmup, label_smoothing=label_smoothing,
                         augment=augment, dropout=dropout, drop_path=drop_path, seed=seed, amp=amp)
    splits = split_validation(data, val_fraction, seed)
    result = train(spec, splits, config, device=dev, evaluate_test=test, progress=not as_json)
    record = result.to_dict()
    if out:
        Path(out).write_text(json.dumps(record, indent=2))
    lines = [f"{spec.name} on {data.name} ({dev}): validation accuracy {100 * result.val_acc:.2f}% "
             f"(val split, {len(splits.val[1]):,} images)"]
    if result.test_acc is not None:
        lines.append(f"test accuracy {100 * result.test_acc:.2f}% (test split, {len(splits.test[1]):,} images)")
    lines.append(f"{result.images_seen:,} training images in {result.train_s:.1f} s of training "
                 f"({result.images_per_s:,.0f} images/s); {result.wall_s:.1f} s in all")
    text = "\n".join(lines)
    _emit(record, as_json, text)


@bench_app.command("train")
def bench_train_command(
    models: Annotated[Optional[list[str]], typer.Argument(help="Presets (default: baseline_convnet efficientnet_b0_32).")] = None,
    dataset: Annotated[str, typer.Option(help="Dataset to read images from.")] = "cifar10-mini",
    data_dir: Annotated[Optional[str], typer.Option(help="Data root.")] = None,
    images: Annotated[int, typer.Option(min=1, help="Timed training images per loop.")] = 2048,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers of the reference loop (the tutorials use 2).")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Images/s of scalelab's trainer vs a tutorial-style DataLoader loop, and achieved model FLOP/s."""
    from scalelab.arch.zoo import get_preset
    from scalelab.bench import bench_train, matmul_flops
    from scalelab.data import load_dataset, split_validation
    from scalelab.device import pick_device

    dev = pick_device(device)
    data = load_dataset(dataset, data_dir)
    splits = split_validation(data, 0.1, 0)
    peak = matmul_flops(device=str(dev))
    rows, lines = [], [f"device {dev}; dense fp32 matrix multiply: {peak / 1e9:,.1f} GFLOP/s"]
    for name in models or ["baseline_convnet", "efficientnet_b0_32"]:
        b = bench_train(get_preset(name, data.num_classes), splits, images=images, batch_size=batch_size,
                        workers=workers, device=str(dev))
        rows.append(dict(model=b.model, batch_size=b.batch_size, scalelab_images_per_s=b.scalelab_images_per_s,
                         reference_images_per_s=b.reference_images_per_s, speedup=b.speedup,
                         flops_per_image_multiply_adds=b.flops_per_image,
                         achieved_gflop_per_s=b.achieved_flops / 1e9, matmul_gflop_per_s=peak / 1e9))
        lines.append(f"{b.model} (batch {b.batch_size}): scalelab {b.scalelab_images_per_s:,.0f} images/s, "
                     f"reference {b.reference_images_per_s:,.0f} images/s, ratio {b.speedup:.2f}x; "
                     f"model {b.achieved_flops / 1e9:,.1f} GFLOP/s "
                     f"({100 * b.achieved_flops / peak:.0f}% of matrix-multiply)")
    _emit(dict(device=str(dev), matmul_gflop_per_s=peak / 1e9, models=rows), as_json, "\n".join(lines))


def _describe(name: str, *, as_json: bool, latency: bool = False, batch_size: int = 64,
              device: str = "auto", **scaling: Any) -> None:
    from scalelab.arch.zoo import make_spec
    from scalelab.cost import cost

    spec = make_spec(name, num_classes=scaling.pop("classes"), **scaling)
    c = cost(spec)
    data: dict[str, Any] = dict(name=spec.name, resolution_px=spec.resolution, classes=spec.num_classes,
                                params=c.params, flops_multiply_adds=c.flops,
                                uncounted_ops=list(c.uncounted_ops), table=spec.table(),
                                spec=spec.to_dict())
    lines = [spec.format_table(), "", *_cost_lines(spec, c)]
    if latency:
        data["latency"], more = _latency(spec, batch_size, device)
        lines += more
    _emit(data, as_json, "\n".join(lines))


def _latency(spec, batch_size: int, device: str) -> tuple[dict[str, Any], list[str]]:
    from scalelab.arch.build import build
    from scalelab.cost import measure_latency, training_memory
    from scalelab.device import pick_device

    dev = pick_device(device)
    model = build(spec)
    runs = [measure_latency(model, spec.resolution, b, device=dev) for b in (1, batch_size)]
    memory = training_memory(model, spec.resolution, batch_size, device=dev)
    how = "measured" if dev.type == "cuda" else "estimated: weights, gradients, Adam state, saved activations"
    lines = [f"Latency on {dev}: batch {r.batch_size}: {r.median_ms:.2f} ms median of {r.repeats} runs "
             f"({r.images_per_s:,.0f} images/s)" for r in runs]
    lines.append(f"Training step memory at batch {batch_size}: {memory / 2**20:,.0f} MiB ({how})")
    data = dict(device=str(dev), runs=[r.__dict__ for r in runs],
                train_step_memory_bytes=memory, memory_method=how)
    return data, lines


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        app(standalone_mode=False)
    except typer.TyperException as exc:  # bad flags and values; typer raises its own click errors
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            sys.exit(0)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except ScalelabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
