"""`scalelab bench comparisons`: the calibration of the compound-against-single verdicts on simulated sweeps."""

from __future__ import annotations

import math
from typing import Annotated, Optional

import typer

from scalelab.cli._app import JsonFlag, bench_app, emit


@bench_app.command("comparisons")
def bench_comparisons_command(
    sims: Annotated[int, typer.Option(min=200, help="Simulated sweeps per figure.")] = 10000,
    seeds: Annotated[Optional[list[int]], typer.Option("--seeds", min=1, help="Seeds per network (repeatable; default 1 and 3).")] = None,
    multiples: Annotated[int, typer.Option(min=3, max=4, help="FLOPs values per dimension, the base included: 3 (1, 2, 4x) or 4 (1, 2, 4, 8x).")] = 4,
    diff: Annotated[Optional[list[float]], typer.Option("--diff", help="True differences for the power, in points (repeatable; default 2 and 5).")] = None,
    noise: Annotated[float, typer.Option(min=0.0, help="Trial-to-trial standard deviation, in points.")] = 2.5,
    level: Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level, simultaneous over the three comparisons.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
    curve: Annotated[str, typer.Option(help="The true curve every dimension is on: saturating, or steep (a line in "
                                            "log FLOPs misses it, so with seeds the verdicts compare measured "
                                            "networks).")] = "saturating",
    as_json: JsonFlag = False,
) -> None:
    """False-positive rate and power of 'compound against width/depth/resolution' on simulated sweeps."""
    from scalelab.analysis.calibration import CURVES, MEASURED_MULTIPLES, simulate

    seeds, diffs = seeds or [1, 3], diff or [2.0, 5.0]
    if any(d <= 0 for d in diffs):
        raise typer.BadParameter("differences are positive points", param_hint="--diff")
    if curve not in CURVES:
        raise typer.BadParameter(f"{curve!r} is not one of {', '.join(CURVES)}", param_hint="--curve")
    truth = CURVES[curve]
    top = 2.0 ** (multiples - 1)
    rows, lines = [], []
    for n_seeds in seeds:
        null = simulate(sims=sims, multiples=multiples, seeds=n_seeds, noise=noise / 100, level=level, seed=seed,
                        curve=truth)
        powers = [simulate(sims=sims, multiples=multiples, seeds=n_seeds, delta=d / 100, noise=noise / 100,
                           level=level, seed=seed + 1 + i, curve=truth) for i, d in enumerate(diffs)]
        rows.append(dict(
            seeds=n_seeds, sims=sims,
            false_positive_rate=null.any_claim.rate, false_positive_interval=null.any_claim.interval,
            per_comparison_rate=null.claims.rate, per_comparison_interval=null.claims.interval,
            detectable_points=null.detectable,
            power=[dict(diff_points=d, rate=p.correct.rate, interval=p.correct.interval)
                   for d, p in zip(diffs, powers)]))
        power = "; ".join(f"+{d:g} points {p.correct}" for d, p in zip(diffs, powers))
        # The standard error shrinks as 1/sqrt(seeds): the seeds that would bring the detectable difference
        # down to the smallest difference asked about (an estimate; rerun with --seeds to check it). From one
        # seed the few degrees of freedom inflate it, so it is given from replicates only.
        needed = math.ceil(n_seeds * (null.detectable / min(diffs)) ** 2) if n_seeds > 1 else None
        rows[-1]["seeds_for_smallest_diff"] = needed
        more = f" (about {needed} seeds per network for {min(diffs):g})" if needed else ""
        lines.append(f"{n_seeds} seed{'s' if n_seeds > 1 else ''} per network: false positives {null.any_claim} of "
                     f"null sweeps (each verdict {null.claims}); power {power}; smallest detectable difference "
                     f"(80 % power) {null.detectable:.1f} points{more}")
    base = 100 * float(truth(1.0))
    head = (f"Compound against width, depth and resolution on {sims} simulated sweeps per figure (seed {seed}): "
            f"the base network and each dimension at {multiples} FLOPs values up to {top:g}x (measured FLOPs off "
            f"plan as rounded networks land, compound at up to {MEASURED_MULTIPLES['compound'][multiples - 2]:g}x), "
            f"every dimension on one true {curve} curve ({base:.0f} % at the base, "
            f"{100 * float(truth(top)):.1f} % at {top:g}x) plus Gaussian trial noise of sd {noise:g} points; "
            f"{100 * level:g} % level, simultaneous over the 3 verdicts of a sweep. Rates with {100 * level:g} % "
            f"Clopper-Pearson intervals.")
    foot = (f"A false positive is a sweep where no dimension differs in which any verdict is other than 'no clear "
            f"difference'. Power: the share of sweeps with compound truly ahead by the stated points at {top:g}x "
            f"the base FLOPs (from zero at the base, linear in log FLOPs) called 'compound more accurate' "
            f"against width.")
    emit(dict(settings=dict(sims=sims, multiples=multiples, noise_points=noise, level=level, seed=seed, curve=curve),
              rows=rows),
         as_json, "\n".join([head, *lines, foot]))
