"""`scalelab models`, `cost` and `family`: presets, their Table-1 view and their cost."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from scalelab.cli._app import Classes, JsonFlag, app, emit, models_app
from scalelab.errors import ScalelabError
from scalelab.rounds import DEFAULT_ROUNDS


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
                         blocks=sum(st.layers for st in spec.stages),
                         head_conv=bool(spec.head.channels), fully_connected=len(spec.head.hidden) + 1))
    text = "\n".join(f"{r['name']:<24} {r['resolution_px']:>4} px  stem + {r['blocks']:>3} blocks + "
                      f"{'1x1 conv + ' if r['head_conv'] else ''}{r['fully_connected']} FC  "
                      f"{'+'.join(r['operators'])}" for r in rows)
    emit(rows, as_json, text)


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
    rounds: Annotated[int, typer.Option(min=1, help="Rounds for --latency: batch 1 and the larger batch are "
                                         "timed alternately, and the median over rounds is reported.")] = DEFAULT_ROUNDS,
    device: Annotated[str, typer.Option(help="Device for --latency: cpu, cuda or auto.")] = "auto",
    save: Annotated[Optional[str], typer.Option(help="Also write the scaled network's spec JSON here (for "
                                                     "train, compare, family or a study's model).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Parameters, FLOPs (multiply-adds) and optionally latency of a preset, scaled as asked."""
    _describe(name, classes=classes, resolution=resolution, width=width, depth=depth, alpha=alpha,
              beta=beta, gamma=gamma, phi=phi, latency=latency, batch_size=batch_size, rounds=rounds,
              device=device, save=save, as_json=as_json)


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
    from scalelab.cost import check_fits, cost

    base = resolve(name, classes)
    rows = []
    family = compound_family(base, alpha, beta, gamma, list(range(phi_max + 1)))
    for _, _, spec in family:  # a member too large is refused before any is built
        check_fits(spec)
    for phi, scale, spec in family:
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
    emit(rows, as_json, text)


def _describe(name: str, *, as_json: bool, latency: bool = False, batch_size: int = 64, rounds: int = DEFAULT_ROUNDS,
              device: str = "auto", save: str | None = None, **scaling: Any) -> None:
    from scalelab.arch.zoo import make_spec
    from scalelab.cost import check_fits, cost
    from scalelab.device import pick_device
    from scalelab.files import WriteError, check_writable_file, write_text_atomic

    if save:
        check_writable_file(save, what="--save")
    spec = make_spec(name, num_classes=scaling.pop("classes"), **scaling)
    c = cost(spec)  # checks the network fits in memory before building it
    if latency:
        check_fits(spec, batch_size=batch_size, training=True, device=pick_device(device))
    if save:
        try:
            write_text_atomic(save, spec.to_json() + "\n")
        except WriteError as exc:
            raise ScalelabError(f"cannot write the spec to '{save}': {exc.reason}") from exc
    data: dict[str, Any] = dict(name=spec.name, resolution_px=spec.resolution, classes=spec.num_classes,
                                params=c.params, flops_multiply_adds=c.flops,
                                uncounted_ops=list(c.uncounted_ops), table=spec.table(),
                                spec=spec.to_dict())
    lines = [spec.format_table(), "", *_cost_lines(spec, c), *([f"Saved the spec to {save}"] if save else [])]
    if latency:
        data["latency"], more = _latency(spec, batch_size, device, rounds)
        lines += more
    emit(data, as_json, "\n".join(lines))
    if as_json and latency:
        for line in data["latency"]["warnings"]:
            typer.echo(line, err=True)


def _latency(spec, batch_size: int, device: str, rounds: int) -> tuple[dict[str, Any], list[str]]:
    """Batch-1 and batch-N latency timed alternately in ``rounds`` rounds: each round's figure is the median of
    its runs (at least 0.2 s of them), the figure quoted the median over rounds, and the per-round ratio of
    batch-N to batch-1 images/s (the batching gain) is measured under one load."""
    from scalelab.arch.build import build
    from scalelab.cost import measure_latency, training_memory
    from scalelab.device import pick_device
    from scalelab.rounds import Machine, Spread, alternate, warning

    dev = pick_device(device)
    model = build(spec)
    batches = (1, batch_size)
    before = Machine.now()
    figures = alternate({b: lambda b=b: measure_latency(model, spec.resolution, b, device=dev,
                                                        min_seconds=0.2).median_ms for b in batches}, rounds)
    after = Machine.now()
    ms = {b: Spread(tuple(figures[b])) for b in batches}
    gain = Spread.ratio([batch_size / v for v in figures[batch_size]], [1 / v for v in figures[1]])
    memory = training_memory(model, spec.resolution, batch_size, device=dev)
    how = "measured" if dev.type == "cuda" else "estimated: weights, gradients, Adam state, saved activations"
    lines = [f"Latency on {dev} (torch {before.torch_threads} threads on {before.cores} cores; load average "
             f"1 / 5 / 15 min {before.load_text()} before, {after.load_text()} after), batches 1 and {batch_size} "
             f"timed alternately:"]
    lines += [f"  batch {b}: {ms[b].text(' ms')}, {b / ms[b].median * 1e3:,.0f} images/s" for b in batches]
    lines.append(f"  batch {batch_size} / batch 1 images/s: {gain.text('x')}")
    lines.append(f"Training step memory at batch {batch_size}: {memory / 2**20:,.0f} MiB ({how})")
    checks = [(f"batch-{b} latency", ms[b]) for b in batches] + [(f"batch {batch_size} / batch 1 ratio", gain)]
    warnings = [line for line in (warning(what, spread) for what, spread in checks) if line]
    lines += warnings
    data = {"device": str(dev), "rounds": rounds, "machine_before": before.to_dict(), "machine_after": after.to_dict(),
            "batches": [{"batch_size": b, "median_ms": ms[b].to_dict(), "images_per_s": b / ms[b].median * 1e3}
                        for b in batches],
            "batch_gain": gain.to_dict(), "train_step_memory_bytes": memory, "memory_method": how,
            "warnings": warnings}
    return data, lines
