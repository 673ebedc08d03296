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
                         scalelab_bf16_images_per_s=b.scalelab_bf16_images_per_s,
                         reference_images_per_s=b.reference_images_per_s, speedup=b.speedup,
                         flops_per_image_multiply_adds=b.flops_per_image,
                         achieved_gflop_per_s=b.achieved_flops / 1e9, matmul_gflop_per_s=peak / 1e9))
        bf16 = (f", bf16 autocast {b.scalelab_bf16_images_per_s:,.0f} images/s"
                if b.scalelab_bf16_images_per_s is not None else "")
        lines.append(f"{b.model} (batch {b.batch_size}): scalelab fp32 {b.scalelab_images_per_s:,.0f} images/s"
                     f"{bf16}; reference (fp32) {b.reference_images_per_s:,.0f} images/s; best ratio "
                     f"{b.speedup:.2f}x (fp32 alone {b.scalelab_images_per_s / b.reference_images_per_s:.2f}x); "
                     f"model {b.achieved_flops / 1e9:,.1f} GFLOP/s at the best setting "
                     f"({100 * b.achieved_flops / peak:.0f}% of fp32 matrix-multiply)")
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


# --- Searches and scaling studies (scalelab.search) -------------------------------------------------------

search_app = typer.Typer(no_args_is_help=True, help="Architecture searches stored in an Optuna study.")
app.add_typer(search_app, name="search")

# (parameter, type, option, where the value goes in the study settings) for every study command.
_STUDY_FLAGS = [
    ("dataset", str, typer.Option(help="Dataset name (default cifar10-mini)."), ("dataset",)),
    ("data_dir", str, typer.Option(help="Data root (default: $SCALELAB_DATA, then the user cache)."), ("data_dir",)),
    ("epochs", float, typer.Option(help="Epochs per trial (default 10)."), ("train", "epochs")),
    ("max_images", int, typer.Option(min=1, help="Training images per trial."), ("train", "max_images")),
    ("max_seconds", float, typer.Option(help="Seconds of training per trial."), ("train", "max_seconds")),
    ("batch_size", int, typer.Option(min=1, help="Training batch size (default 128)."), ("train", "batch_size")),
    ("seed", int, typer.Option(help="Seed of the validation split, training and sampler."), ("train", "seed")),
    ("val_fraction", float, typer.Option(help="Share of each class held out for validation (default 0.1)."),
     ("val_fraction",)),
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
# Scaling of the network a study starts from (before the study scales it further).
_BASE_FLAGS = [
    ("base_depth", float, typer.Option(help="Depth multiplier applied to the starting network first."),
     ("model", "depth")),
    ("base_width", float, typer.Option(help="Width multiplier applied to the starting network first."),
     ("model", "width")),
    ("base_resolution", int, typer.Option(min=1, help="Input size in px of the starting network."),
     ("model", "resolution")),
]
# Compound coefficients for `scale` and `sweep`.
_COEFF_FLAGS = [
    ("alpha", float, typer.Option(help="Depth base (default 1.2)."), ("search", "alpha")),
    ("beta", float, typer.Option(help="Width base (default 1.1)."), ("search", "beta")),
    ("gamma", float, typer.Option(help="Resolution base (default 1.15)."), ("search", "gamma")),
    ("coefficients", str, typer.Option(help="alpha, beta, gamma from the JSON `scalelab grid` saved."),
     ("search", "coefficients")),
]


def _study_flags(*groups: list) -> Any:
    """Add shared flags to a study command; their given values reach it as the nested dict ``flags``
    (the shape of a study file), so flags override a file key by key."""
    import functools
    import inspect

    specs = [s for group in groups for s in group]

    def decorate(func: Any) -> Any:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "flags"]
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=Annotated[Optional[kind], option])
                 for name, kind, option, _ in specs]

        @functools.wraps(func)
        def command(**kwargs: Any) -> None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)  # scalelab prints its own progress
            flags: dict[str, Any] = {}
            for name, _, _, where in specs:
                value = kwargs.pop(name)
                if value is not None:
                    table = flags.setdefault(where[0], {}) if len(where) == 2 else flags
                    table[where[-1]] = value
            func(**kwargs, flags=flags)

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
    skeleton: Annotated[Optional[str], typer.Option(help="Preset or spec JSON the space is built around (default efficientnet_b0_32).")] = None,
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
) -> None:
    """MnasNet-style search for a baseline network around a skeleton (see scalelab.search.space)."""
    from scalelab.search import run_kind

    if target_flops and target_latency:
        raise ScalelabError("give --target-flops or --target-latency, not both")
    search = _given(trials=trials, objective=objective, cost=cost, target=target_flops or target_latency, w=w,
                    max_flops=max_flops, max_memory=max_memory, prune=prune)
    typer.echo(run_kind("baseline", _with(flags, search=search, model=_given(name=skeleton), out=out)).text())


@app.command("grid")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS)
def grid_command(
    target_flops: Target = None,
    baseline: Annotated[Optional[str], typer.Option(help="Preset or spec JSON from `search baseline` (default efficientnet_b0_32).")] = None,
    alpha: Annotated[Optional[str], typer.Option(help="alpha range LOW:HIGH (default 1:2).")] = None,
    beta: Annotated[Optional[str], typer.Option(help="beta range LOW:HIGH (default 1:1.5).")] = None,
    gamma: Annotated[Optional[str], typer.Option(help="gamma range LOW:HIGH (default 1:1.5).")] = None,
    step: Annotated[Optional[float], typer.Option(help="Grid step (default 0.1).")] = None,
    tolerance: Annotated[Optional[float], typer.Option(help="Relative tolerance on alpha*beta^2*gamma^2 = K (default 0.05).")] = None,
    measured_tolerance: Annotated[Optional[float], typer.Option(help="Relative tolerance on the measured FLOPs ratio (default 0.10).")] = None,
    prune: Prune = None,
    out: Annotated[Optional[str], typer.Option(help="Coefficients JSON (default: <run-dir>/<study>/coefficients.json).")] = None,
    flags: Optional[dict] = None,
) -> None:
    """Grid search of alpha, beta, gamma with alpha*beta^2*gamma^2 = K (default 2x the baseline FLOPs)."""
    from scalelab.search import run_kind

    search = _given(target=target_flops, alpha=_range(alpha, "alpha"), beta=_range(beta, "beta"),
                    gamma=_range(gamma, "gamma"), step=step, tolerance=tolerance,
                    measured_tolerance=measured_tolerance, prune=prune)
    typer.echo(run_kind("grid", _with(flags, search=search, model=_given(name=baseline), out=out)).text())


@app.command("scale")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS, _COEFF_FLAGS)
def scale_command(
    baseline: Annotated[Optional[str], typer.Option(help="Preset or spec JSON (default efficientnet_b0_32).")] = None,
    phi_max: Annotated[Optional[int], typer.Option(min=1, help="Train phi = 1..N (default 3).")] = None,
    target_flops: Annotated[Optional[list[str]], typer.Option(help="FLOPs targets instead of phis: 4x,8x or 800M (repeatable).")] = None,
    flags: Optional[dict] = None,
) -> None:
    """Train the compound-scaled family of a baseline: d, w, r = alpha^phi, beta^phi, gamma^phi."""
    from scalelab.search import run_kind

    search = _given(phis=list(range(1, phi_max + 1)) if phi_max else None, targets=_list(target_flops))
    typer.echo(run_kind("family", _with(flags, search=search, model=_given(name=baseline))).text())


@app.command("sweep")
@_study_flags(_STUDY_FLAGS, _BASE_FLAGS, _COEFF_FLAGS)
def sweep_command(
    baseline: Annotated[Optional[str], typer.Option(help="Preset or spec JSON (default efficientnet_b0_32).")] = None,
    multiples: Annotated[Optional[list[str]], typer.Option(help="FLOPs multiples K (default 1,2,4,8).")] = None,
    dimensions: Annotated[Optional[list[str]], typer.Option(help="Of width, depth, resolution, compound (default all).")] = None,
    flags: Optional[dict] = None,
) -> None:
    """Width-only (w = sqrt K), depth-only (d = K), resolution-only (r = sqrt K) and compound scaling at
    matched FLOPs multiples K."""
    from scalelab.search import run_kind

    search = _given(multiples=_list(multiples, float), dimensions=_list(dimensions))
    typer.echo(run_kind("sweep", _with(flags, search=search, model=_given(name=baseline))).text())


@app.command("compare")
@_study_flags(_STUDY_FLAGS)
def compare_command(
    models: Annotated[list[str], typer.Argument(help="Presets or spec JSON files.")],
    flags: Optional[dict] = None,
) -> None:
    """Train several networks under one recipe, recorded as a study of kind 'compare'."""
    from scalelab.search import run_kind

    typer.echo(run_kind("compare", _with(flags, search={"models": models})).text())


@app.command("run")
@_study_flags(_STUDY_FLAGS)
def run_command(
    study_file: Annotated[str, typer.Argument(help="A study file, such as studies/smoke_grid.toml.")],
    trials: Annotated[Optional[int], typer.Option(min=1, help="Trials to finish (baseline searches).")] = None,
    flags: Optional[dict] = None,
) -> None:
    """Run (or resume) the study a TOML file describes; flags override the file."""
    from scalelab.search import run_file

    typer.echo(run_file(study_file, _with(flags, search=_given(trials=trials))).text())


@app.command("worker")
def worker_command(
    study: Annotated[str, typer.Option(help="Name of the study to join.")],
    storage: Annotated[Optional[str], typer.Option(help="Its storage: SQLAlchemy URL or SQLite file (default runs/scalelab.db).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[Optional[str], typer.Option(help="Where the study's dataset lies on this machine.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Print progress.")] = True,
) -> None:
    """Join an existing study as one more worker (from any machine that reaches its storage)."""
    import optuna

    from scalelab.search import join_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ran = join_study(study, storage, device=device, progress=progress, data_dir=data_dir)
    typer.echo(f"worker finished: ran {ran} trial(s) of study '{study}'")


@app.command("results")
def results_command(
    study: Annotated[Optional[str], typer.Option(help="Study name (default: every study in the storage).")] = None,
    storage: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL or SQLite file (default runs/scalelab.db).")] = None,
    csv: Annotated[Optional[str], typer.Option(help="Also write the full table (curve and spec as JSON) here.")] = None,
) -> None:
    """The tidy table of finished trials, rebuilt from the storage (one row per trial)."""
    import pandas as pd

    from scalelab.analysis.results import results_table

    table = results_table(storage or "runs/scalelab.db", study)
    if csv:
        table.assign(curve=table["curve"].map(json.dumps), spec=table["spec"].map(json.dumps)).to_csv(csv, index=False)
    with pd.option_context("display.max_columns", None, "display.width", 200):
        shown = table.drop(columns=["curve", "spec"])
        typer.echo(shown.to_string(index=False) if len(shown) else "no finished trials")
    if csv:
        typer.echo(f"Saved {len(table)} rows to {csv}")


@app.command("report")
def report_command(
    out: Annotated[str, typer.Option(help="Folder for the HTML pages (created if needed).")] = "reports",
    study: Annotated[Optional[str], typer.Option(help="Report only this study (default: every study).")] = None,
    storage: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL or SQLite file (default runs/scalelab.db).")] = None,
    title: Annotated[str, typer.Option(help="Title of the index page.")] = "scalelab report",
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap replicates per fitted curve.")] = 200,
) -> None:
    """Write static HTML pages (figures, fits, tables) of the studies in the storage; they work offline."""
    from pathlib import Path

    from scalelab.analysis.results import results_table, search_rewards
    from scalelab.report import ReportSettings, write_site

    storage = storage or "runs/scalelab.db"
    settings = ReportSettings(n_bootstrap=bootstrap, rewards=search_rewards(storage))
    files = write_site(results_table(storage, study), Path(out), title=title, settings=settings)
    typer.echo(f"Wrote {len(files)} files to {Path(out)}; open {files[0]} in a browser")


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
