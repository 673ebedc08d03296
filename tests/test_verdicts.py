"""Calibrated verdicts on compound scaling against single dimensions: simulated null sweeps keep the
false-positive rate at the stated level, real differences are found, identical accuracies (an all-chance
sweep) never make a claim, replicates are paired by seed, and ``scalelab bench comparisons`` prints the
figures."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis.calibration import simulate, steep_accuracy
from scalelab.analysis.compare import compound_vs_single, verdict_line
from scalelab.analysis.verdicts import binomial_interval, compare_dimensions
from scalelab.cli import main

BASE = 33e6
# Measured FLOPs / base FLOPs of the fixture sweep's networks at 2x and 4x: compound lands above its plan.
MULTIPLES = {"width": (1.92, 3.71), "depth": (2.03, 4.09), "resolution": (2.17, 3.94), "compound": (3.01, 5.17)}


def sweep(acc, seeds=(0,)) -> pd.DataFrame:
    """A sweep's complete trials: the base network and two scaled networks per dimension, one row per seed;
    ``acc(dimension, multiple, seed)`` gives each validation accuracy."""
    rows = []
    for s in seeds:
        rows.append(dict(dimension=np.nan, depth_mult=1.0, width_mult=1.0, resolution_mult=1.0, multiple=1.0,
                         flops=BASE, seed=s, model="base", val_acc=acc(None, 1.0, s)))
        for dim, mults in MULTIPLES.items():
            for k, m in zip((2.0, 4.0), mults):
                rows.append(dict(dimension=dim, depth_mult=1.0, width_mult=1.0, resolution_mult=1.0, multiple=k,
                                 flops=round(BASE * m), seed=s, model=f"{dim}-x{k:g}", val_acc=acc(dim, m, s)))
    return pd.DataFrame(rows)


def test_all_chance_sweep_says_no_dimension_differs():
    """The issue's sweep: 9 trials, every one at exactly 10.0 %. Each comparison is 'no clear difference'
    with a difference of exactly zero and a zero-width interval, never a claim."""
    table = compound_vs_single(sweep(lambda *_: 0.1))
    assert len(sweep(lambda *_: 0.1)) == 9
    assert list(table["dimension"]) == ["width", "depth", "resolution"]
    assert (table["verdict"] == "none").all() and table["answered"].all() and table["identical"].all()
    assert (table["diff"] == 0).all() and (table["lower"] == 0).all() and (table["upper"] == 0).all()
    assert table["note"].str.contains(r"same validation accuracy \(10\.0 %\)").all()


def test_null_sweeps_claim_a_difference_at_most_at_the_stated_rate():
    """Simulated sweeps in which every dimension is on one true curve plus trial noise of sd 2.5 points.

    4000 sweeps per design with a fixed seed (deterministic). If the true study-level rate were 5 %, the
    observed rate would exceed 5.8 % with probability under 1 % (binomial sd 0.34 points), so the bound is
    a statement about calibration, not luck; and the exact interval must reach down to 5 %.
    """
    for multiples in (3, 4):
        for seeds in (1, 3):
            null = simulate(sims=4000, multiples=multiples, seeds=seeds, seed=11)
            assert null.any_claim.rate <= 0.058, (multiples, seeds, str(null.any_claim))
            assert null.any_claim.interval[0] <= 0.05
            # Each verdict on its own is at 1 - 0.05 / 3 (Bonferroni): 1.67 % (sd 0.12 points over 12000).
            assert null.claims.rate <= 0.0167 + 0.004, (multiples, seeds, str(null.claims))


def test_real_differences_are_found():
    """Compound truly ahead by 12 points at 8x the FLOPs: found almost always with 3 seeds per network,
    and power grows with the difference and with the seeds."""
    big = simulate(sims=2000, seeds=3, delta=0.12, seed=3)
    assert big.correct.rate >= 0.95
    assert big.detectable < 6  # points: the design's own statement of what it resolves
    small, one_seed = simulate(sims=2000, seeds=3, delta=0.02, seed=4), simulate(sims=2000, seeds=1, delta=0.12, seed=5)
    assert small.correct.rate < big.correct.rate and one_seed.correct.rate < big.correct.rate
    assert simulate(sims=2000, seeds=3, seed=6).detectable < simulate(sims=2000, seeds=1, seed=6).detectable


def test_a_clear_difference_is_stated_with_its_interval():
    rng = np.random.default_rng(0)

    def acc(dim, m, seed):  # compound gains 4 points per doubling more than every single dimension
        lift = 0.04 * np.log2(m) if dim == "compound" else 0.0
        return 0.78 + 0.02 * np.log2(m) + lift + rng.normal(0, 0.003)

    trials = sweep(acc, seeds=(0, 1, 2))
    table = compound_vs_single(trials).set_index("dimension")
    # Every trial counts once whatever the table's index (one concatenated without ignore_index, say).
    same = compound_vs_single(trials.set_axis([0] * len(trials))).set_index("dimension")
    pd.testing.assert_frame_equal(table, same)
    assert (table["verdict"] == "compound").all()
    assert (table["lower"] > 0).all() and (table["lower"] <= table["diff"]).all()
    assert (table["seeds"] == 3).all() and (table["trials"] == 15).all() and (table["networks"] == 5).all()
    # The difference is stated at the largest FLOPs both reached: 4 points per doubling there.
    expect = 0.04 * np.log2(table["flops_ref"] / BASE)
    assert np.allclose(table["diff"], expect, atol=0.01)


def test_replicates_are_paired_by_seed():
    """A seed that lifts every network it trains by the same amount is a property of the seed, not of a
    dimension: paired by seed it leaves the interval as narrow as the trial noise alone."""
    rng = np.random.default_rng(1)
    noise = {key: rng.normal(0, 0.002) for key in range(200)}
    counter = iter(range(200))
    lucky = {0: 0.0, 1: 0.06, 2: -0.05}

    def acc(dim, m, seed):
        return 0.8 + 0.01 * np.log2(m) + lucky[seed] + noise[next(counter)]

    table = sweep(acc, seeds=(0, 1, 2))
    paired = compare_dimensions(table, "compound", "width", comparisons=3)
    unpaired = compare_dimensions(table.assign(seed=np.arange(len(table))), "compound", "width", comparisons=3)
    assert paired.verdict == "none" and paired.se < 0.003
    assert unpaired.se > 3 * paired.se


def test_networks_off_the_shared_curve_are_compared_where_measured():
    """Replicates measure seed noise only; when the networks sit off the shared curve by more than that,
    the curve is not used. Compound's accuracy at the FLOPs of width's largest network lies between its two
    networks that bracket those FLOPs, and the interval spans both ends: it holds the true difference."""
    rng = np.random.default_rng(2)

    def acc(dim, m, seed):  # compound 3 points below width wherever it is scaled
        return steep_accuracy(m) - (0.03 if dim == "compound" else 0.0) + rng.normal(0, 0.002)

    c = compare_dimensions(sweep(acc, seeds=(0, 1, 2)), "compound", "width", comparisons=3)
    assert c.variance == "bracket" and c.lack_of_fit_p < 0.05
    assert c.flops_ref == round(BASE * 3.71) and c.bracketed == "compound"
    assert (c.bracket_lo, c.bracket_hi) == (round(BASE * 3.01), round(BASE * 5.17))
    assert c.verdict == "b" and c.lower <= -0.03 <= c.upper
    # The ends: compound's networks against width's at 3.71x, each off by the seed-paired noise.
    ends = [steep_accuracy(m) - 0.03 - steep_accuracy(3.71) for m in (3.01, 5.17)]
    assert c.lower <= min(ends) and max(ends) <= c.upper and min(ends) <= c.diff <= max(ends)
    # Five networks plus two seed effects fitted to 15 trials: 8 degrees of freedom of seed-to-seed noise.
    assert c.df == 15 - 5 - 2 == 8
    # The summary's line for it (and for resolution, on compound's curve: not settled, what would settle it).
    lines = [verdict_line(row) for row in compound_vs_single(
        sweep(lambda dim, m, seed: acc("compound" if dim == "resolution" else dim, m, seed), seeds=(0, 1, 2))
    ).itertuples(index=False)]
    assert lines[0].startswith("Compound against width at 122 M multiply-adds: width more accurate; compound "
                               "minus width -")
    assert "5 networks, up to 3 seed(s), measured networks)." in lines[0]
    assert "resolution at 130 M multiply-adds: no clear difference" in lines[2]
    assert lines[2].endswith("to know: a compound network nearer 130 M multiply-adds (resume the sweep with --add "
                             "compound:K), or more seeds.")


def test_bracketed_verdicts_keep_the_false_positive_rate_and_find_real_differences():
    """Simulated sweeps on one steep true curve (every comparison read off measured networks): a sweep
    where no dimension differs claims a difference at most at the stated rate, and a true 3-point lead of
    compound is found in most sweeps; the curve model's misfit interval found it in none (detectable: 13 to
    49 points)."""
    for multiples in (3, 4):
        null = simulate(sims=2000, multiples=multiples, seeds=3, noise=0.004, curve=steep_accuracy, seed=12)
        assert null.any_claim.rate <= 0.058, (multiples, str(null.any_claim))
        real = simulate(sims=2000, multiples=multiples, seeds=3, noise=0.004, curve=steep_accuracy, delta=0.03, seed=13)
        assert real.correct.rate >= 0.8 and real.detectable < 2, (multiples, str(real.correct))


def test_without_a_bracketing_network_the_interval_is_the_scatter_between_networks():
    """No base network and no compound network at or below width's largest FLOPs: nothing brackets the
    comparison, so a misfit widens the interval to the scatter between networks instead."""
    rng = np.random.default_rng(2)
    table = sweep(lambda dim, m, seed: steep_accuracy(m) + rng.normal(0, 0.002), seeds=(0, 1, 2))
    table = table[table["dimension"].isin(["compound", "width"])]
    table.loc[table["dimension"] == "width", "flops"] = table["flops"] / 2  # width at 0.96x and 1.86x
    c = compare_dimensions(table, "compound", "width")
    assert c.variance == "networks" and c.lack_of_fit_p < 0.05 and np.isnan(c.bracket_lo)
    assert c.df == c.networks - 3 == 1


def test_comparisons_that_cannot_be_made_say_why():
    table = sweep(lambda *_: 0.5)
    only_compound = table[table["dimension"].isna() | (table["dimension"] == "compound")]
    assert compound_vs_single(only_compound).empty
    two_flops = table[table["multiple"] <= 2.0]  # base, one width and one compound network: 3 trials, 3 values
    c = compare_dimensions(two_flops, "compound", "width")
    assert not c.answered and "degrees of freedom" in c.note and np.isnan(c.diff)


def test_binomial_interval():
    assert binomial_interval(0, 10) == (0.0, pytest.approx(0.3085, abs=1e-4))
    lo, hi = binomial_interval(20, 400)
    assert lo < 0.05 < hi and hi - lo < 0.06


def test_bench_comparisons_prints_the_rates(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["scalelab", "bench", "comparisons", "--sims", "400", "--json"])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    assert (info.value.code or 0) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["seeds"] for row in data["rows"]] == [1, 3] and data["settings"]["sims"] == 400
    for row in data["rows"]:
        assert row["false_positive_rate"] <= 0.075  # 400 sweeps: 5 % + 2.3 binomial sd
        assert [p["diff_points"] for p in row["power"]] == [2.0, 5.0]
    monkeypatch.setattr(sys, "argv", ["scalelab", "bench", "comparisons", "--sims", "200"])
    with pytest.raises(SystemExit):
        main()
        raise SystemExit(0)
    out = capsys.readouterr().out
    assert "1 seed per network: false positives" in out and "power +2 points" in out
    monkeypatch.setattr(sys, "argv", ["scalelab", "bench", "comparisons", "--sims", "100"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2  # fewer than 200 sweeps per figure is refused
