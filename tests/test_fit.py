"""Tests for saturation-curve fitting: recovery, uncertainty, extrapolation, selection and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis import (
    FORMS,
    Fit,
    FitError,
    compare_at_equal_compute,
    extrapolation_check,
    fit_curve,
    select_form,
)
from scalelab.errors import ScalelabError

COMPUTE = np.logspace(9, 12, 10)


def power_law(c: np.ndarray, floor: float = 0.08, amp: float = 0.5, alpha: float = 0.35) -> np.ndarray:
    """Error ``floor + amp * (C / 1e9)^-alpha``."""
    return floor + amp * (np.asarray(c) / 1e9) ** -alpha


def raw_amplitude(fit: Fit, c0: float = 1e9) -> float:
    """``A`` of a power-law fit re-expressed at ``c0`` instead of the fit's reference compute."""
    return fit.params["A"] * (fit.c_ref / c0) ** fit.params["alpha"]


def noisy(values: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return values + np.random.default_rng(seed).normal(0.0, sigma, np.shape(values))


# --- recovery -------------------------------------------------------------------------------------------


def test_noise_free_power_law_is_recovered_exactly() -> None:
    fit = fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=20)
    assert fit.params["E"] == pytest.approx(0.08, abs=1e-6)
    assert fit.params["alpha"] == pytest.approx(0.35, rel=1e-5)
    assert raw_amplitude(fit) == pytest.approx(0.5, rel=1e-5)
    assert fit.rmse < 1e-8
    assert fit.asymptote == pytest.approx(fit.params["E"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noisy_power_law_is_recovered_within_tolerance(seed: int) -> None:
    # sigma 0.005 (half an accuracy point) on 10 points over three decades.
    # The fit weighs the large-compute end most (it is what an extrapolation continues from), so that is
    # where it is held to the noise level.
    fit = fit_curve(COMPUTE, noisy(power_law(COMPUTE), 0.005, seed), "pow3", n_bootstrap=0)
    assert fit.params["E"] == pytest.approx(0.08, abs=0.03)
    assert fit.params["alpha"] == pytest.approx(0.35, rel=0.5)
    deviation = fit.predict(COMPUTE) - power_law(COMPUTE)
    assert np.sqrt(np.mean(deviation[5:] ** 2)) < 0.006 and np.max(np.abs(deviation[5:])) < 0.0125
    assert np.max(np.abs(deviation)) < 0.03
    assert 0.001 < fit.noise < 0.015


@pytest.mark.parametrize(
    ("form", "truth"),
    [
        ("pow4", lambda c: 0.05 + 0.6 * ((c + 3e10) / (1e9 + 3e10)) ** -0.8),
        ("mmf4", lambda c: 0.1 + 0.6 / (1 + (c / 3e10) ** 1.2)),
        ("wbl4", lambda c: 0.1 + 0.5 * np.exp(-((c / 1e11) ** 0.5))),
        ("exp3", lambda c: 0.15 + 0.5 * np.exp(-c / 2e11)),
        ("pow2", lambda c: 0.7 * (c / 1e9) ** -0.2),
    ],
)
def test_every_form_reproduces_its_own_noise_free_curve(form: str, truth) -> None:
    y = truth(COMPUTE)
    fit = fit_curve(COMPUTE, y, form, n_bootstrap=0)
    assert np.max(np.abs(fit.predict(COMPUTE) - y)) < 1e-4
    beyond = COMPUTE[-1] * np.array([3.0, 30.0])
    assert np.max(np.abs(fit.predict(beyond) - truth(beyond))) < 5e-3


def test_accuracy_metric_mirrors_error_fit() -> None:
    y = noisy(power_law(COMPUTE), 0.004, 7)
    as_error = fit_curve(COMPUTE, y, "pow3", n_bootstrap=30)
    as_accuracy = fit_curve(COMPUTE, 1.0 - y, "pow3", metric="accuracy", n_bootstrap=30)
    assert as_accuracy.params == pytest.approx(as_error.params)
    assert np.allclose(as_accuracy.predict(COMPUTE), 1.0 - as_error.predict(COMPUTE))
    assert as_accuracy.asymptote == pytest.approx(1.0 - as_error.params["E"])
    lower, upper = as_accuracy.band(COMPUTE)
    assert np.all(lower <= upper)


def test_loss_metric_accepts_values_above_one() -> None:
    loss = 1.7 + 2.0 * (COMPUTE / 1e9) ** -0.3
    fit = fit_curve(COMPUTE, loss, "pow3", metric="loss", n_bootstrap=0)
    assert fit.params["E"] == pytest.approx(1.7, rel=1e-3)
    assert np.allclose(fit.predict(COMPUTE), loss, atol=1e-4)


def test_same_seed_gives_identical_fits() -> None:
    y = noisy(power_law(COMPUTE), 0.005, 4)
    a, b = (fit_curve(COMPUTE, y, "pow3", n_bootstrap=40, seed=3) for _ in range(2))
    assert a.params == b.params and a.param_ci == b.param_ci
    assert np.array_equal(a.band(1e13)[0], b.band(1e13)[0])


def test_robust_loss_resists_one_outlier() -> None:
    y = power_law(COMPUTE)
    y_bad = y.copy()
    y_bad[4] += 0.15
    fit = fit_curve(COMPUTE, y_bad, "pow3", n_bootstrap=0)
    clean = np.delete(np.arange(COMPUTE.size), 4)
    assert np.max(np.abs(fit.predict(COMPUTE[clean]) - y[clean])) < 0.01


# --- shape guarantees ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(FORMS))
def test_fits_never_rise_and_stay_in_unit_interval(form: str) -> None:
    # Ill-behaved data: falls, then rises at the end, with noise.
    y = np.clip(noisy(0.3 - 0.05 * np.arange(10) + 0.012 * np.arange(10) ** 2, 0.02, 5), 0.0, 1.0)
    fit = fit_curve(COMPUTE, y, form, n_bootstrap=20)
    grid = np.logspace(6, 20, 300)
    pred = fit.predict(grid)
    assert np.all((pred >= 0.0) & (pred <= 1.0))
    assert np.all(np.diff(pred) <= 1e-12)
    lower, upper = fit.band(grid, predictive=True)
    assert np.all((lower >= 0.0) & (upper <= 1.0) & (lower <= upper))


@pytest.mark.parametrize("form", list(FORMS))
def test_random_parameters_inside_bounds_give_decreasing_curves(form: str) -> None:
    spec = FORMS[form]
    rng = np.random.default_rng(0)
    half = 2.5
    lo, hi = spec.shape_bounds(half)
    shapes = lo + rng.random((200, lo.size)) * (hi - lo)
    t = np.linspace(-3 * half, 40.0, 400)
    g = spec.shape(t[None, :], *[shapes[:, i : i + 1] for i in range(lo.size)])
    assert np.all(np.isfinite(g)) and np.all(g >= 0.0)
    assert np.all(np.diff(g, axis=1) <= 1e-12)
    assert len(spec.param_names) == spec.n_params


# --- bootstrap ----------------------------------------------------------------------------------------


def test_bootstrap_intervals_cover_the_truth_in_most_replications() -> None:
    hits = {"E": 0, "alpha": 0, "curve": 0}
    n_rep = 12
    for seed in range(n_rep):
        fit = fit_curve(COMPUTE, noisy(power_law(COMPUTE), 0.005, 100 + seed), "pow3", n_bootstrap=80, seed=seed)
        hits["E"] += fit.param_ci["E"][0] <= 0.08 <= fit.param_ci["E"][1]
        hits["alpha"] += fit.param_ci["alpha"][0] <= 0.35 <= fit.param_ci["alpha"][1]
        lower, upper = fit.band(COMPUTE[5])
        hits["curve"] += lower <= power_law(COMPUTE[5]) <= upper
    for name, count in hits.items():
        assert count >= 0.6 * n_rep, f"{name} covered the truth in only {count} of {n_rep} replications"


def test_band_is_tight_inside_the_data_and_wider_far_beyond() -> None:
    fit = fit_curve(COMPUTE, noisy(power_law(COMPUTE), 0.005, 9), "pow3", n_bootstrap=100)
    lower, upper = fit.band([COMPUTE[5], COMPUTE[-1] * 1e4], predictive=False)
    width = upper - lower
    assert 0 < width[0] < width[1]
    inner_lower, inner_upper = fit.band(COMPUTE[5], level=0.5, predictive=False)
    assert lower[0] <= inner_lower <= fit.predict(COMPUTE[5]) <= inner_upper <= upper[0]
    p_lower, p_upper = fit.band(COMPUTE[5])  # the default: a new observation, noise included
    assert p_upper - p_lower > width[0]
    assert fit.replicates(COMPUTE).shape == (100, COMPUTE.size)


def test_param_ci_respects_the_bounds() -> None:
    y = noisy(power_law(COMPUTE), 0.005, 11)
    fit = fit_curve(COMPUTE, y, "pow4", n_bootstrap=60)
    ci = fit.param_ci
    assert all(low <= high for low, high in ci.values())
    assert 0.0 <= ci["E"][0] and ci["E"][1] <= y.max()
    assert ci["A"][0] >= 0.0 and ci["alpha"][0] > 0.0 and ci["C0"][0] >= 0.0
    assert ci["C0"][1] <= COMPUTE[-1] * (1 + 1e-9)


def test_band_without_bootstrap_is_refused() -> None:
    fit = fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=0)
    assert all(np.isnan(v).all() for v in fit.param_ci.values())
    with pytest.raises(FitError, match="n_bootstrap"):
        fit.band(1e12)


# --- saturation and comparison --------------------------------------------------------------------------


def test_saturation_matches_the_closed_form_for_a_power_law() -> None:
    fit = fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=0)
    threshold = 0.005
    a, alpha = raw_amplitude(fit), fit.params["alpha"]
    expected = 1e9 * (a * (1 - 2.0**-alpha) / threshold) ** (1 / alpha)
    assert fit.saturation(threshold) == pytest.approx(expected, rel=1e-6)
    assert fit.saturation(10.0) == COMPUTE[0]
    with pytest.raises(FitError, match="threshold"):
        fit.saturation(0.0)


def test_saturation_interval_holds_the_point_and_narrows_with_less_noise() -> None:
    threshold = 0.005
    truth = fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=0).saturation(threshold)
    widths = []
    for sigma in (0.002, 0.006):
        fit = fit_curve(COMPUTE, noisy(power_law(COMPUTE), sigma, 4), "pow3", n_bootstrap=150)
        lo, hi = fit.saturation_ci(threshold)
        assert lo <= fit.saturation(threshold) <= hi
        assert lo <= truth <= hi
        widths.append(np.log(hi / lo))
    assert 0 < widths[0] < widths[1]
    with pytest.raises(FitError, match="no replicates"):
        fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=0).saturation_ci(threshold)


def test_saturation_interval_may_be_unbounded_but_never_nan() -> None:
    # A pure power law (no floor) with a gain threshold it only reaches far out: some replicates never do.
    fit = fit_curve(COMPUTE, noisy(power_law(COMPUTE, floor=0.0), 0.01, 5), "pow2", n_bootstrap=100)
    lo, hi = fit.saturation_ci(1e-3)
    assert not np.isnan(lo) and not np.isnan(hi) and lo <= hi


def test_compare_at_equal_compute_separates_different_curves() -> None:
    better = fit_curve(COMPUTE, noisy(power_law(COMPUTE, floor=0.05), 0.004, 1), "pow3", n_bootstrap=80)
    worse = fit_curve(COMPUTE, noisy(power_law(COMPUTE, floor=0.10), 0.004, 2), "pow3", n_bootstrap=80)
    same = fit_curve(COMPUTE, noisy(power_law(COMPUTE, floor=0.05), 0.004, 3), "pow3", n_bootstrap=80)
    table = compare_at_equal_compute(better, worse, [1e10, 1e11])
    assert list(table.columns) == ["compute", "a", "b", "diff", "lower", "upper", "p_a_better"]
    assert (table["upper"] < 0).all() and (table["p_a_better"] > 0.95).all()
    assert np.allclose(table["diff"], table["a"] - table["b"])
    even = compare_at_equal_compute(better, same, [1e10])
    assert even["lower"].iloc[0] < 0 < even["upper"].iloc[0]


def test_compare_refuses_mixed_metrics() -> None:
    err = fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=10)
    acc = fit_curve(COMPUTE, 1 - power_law(COMPUTE), "pow3", metric="accuracy", n_bootstrap=10)
    with pytest.raises(FitError, match="metric"):
        compare_at_equal_compute(err, acc, 1e10)


# --- extrapolation and selection ----------------------------------------------------------------------


def test_extrapolation_check_on_a_noisy_power_law_is_accurate_and_covered() -> None:
    compute = np.logspace(9, 12, 12)
    check = extrapolation_check(compute, noisy(power_law(compute), 0.003, 21), "pow3", holdout=3, n_bootstrap=100)
    assert check.fit.n_points == 9 and check.fit.c_range[1] < compute[-3]
    assert list(check.table["compute"]) == list(compute[-3:])
    assert check.mae < 0.01 and check.max_abs_error < 0.015
    assert check.coverage >= 2 / 3


def test_extrapolation_check_exposes_a_wrong_form() -> None:
    compute = np.logspace(9, 12, 12)
    y = power_law(compute)
    good = extrapolation_check(compute, y, "pow3", holdout=3, n_bootstrap=0)
    bad = extrapolation_check(compute, y, "exp3", holdout=3, n_bootstrap=0)
    assert good.mae < 1e-4 < bad.mae
    assert np.isnan(good.coverage)


def test_extrapolation_check_auto_selects_on_training_points_only() -> None:
    compute = np.logspace(9, 12, 12)
    check = extrapolation_check(compute, power_law(compute), "auto", holdout=2, n_bootstrap=20)
    assert check.fit.form in FORMS and check.fit.n_points == 10
    assert check.mae < 1e-3


@pytest.mark.parametrize(
    ("form", "truth"),
    [
        ("pow2", lambda c: 0.6 * (c / 1e9) ** -0.25),
        ("pow3", lambda c: power_law(c)),
        ("mmf4", lambda c: 0.1 + 0.6 / (1 + (c / 3e10) ** 1.5)),
        ("exp3", lambda c: 0.2 + 0.4 * np.exp(-c / 1e11)),
    ],
)
def test_select_form_picks_the_generating_form_on_clean_data(form: str, truth) -> None:
    compute = np.logspace(9, 12, 12)
    fit, table = select_form(compute, truth(compute), forms=list(FORMS), criterion="extrapolation", n_bootstrap=0)
    assert fit.form == form, table.to_string()
    assert table["selected"].sum() == 1
    assert table.loc[table["selected"], "form"].item() == form
    assert {"form", "n_params", "rmse", "aicc", "extrapolation_mae", "note"} <= set(table.columns)


def test_select_form_prefers_simple_forms_when_points_are_few() -> None:
    compute = np.logspace(9, 11, 5)
    fit, table = select_form(compute, noisy(power_law(compute), 0.005, 3), n_bootstrap=0)
    assert FORMS[fit.form].n_params <= 3
    skipped = table[table["n_params"] >= 4]
    assert skipped["extrapolation_mae"].isna().all() and (skipped["note"] != "").all()


def test_select_form_refuses_to_extrapolate_three_points() -> None:
    # Three values cannot show a trend against unknown noise (Mann-Kendall's smallest p is 1/6).
    with pytest.raises(FitError, match="too few different compute values to extrapolate"):
        select_form([1e9, 1e10, 1e11], [0.5, 0.35, 0.28], n_bootstrap=0)


def test_select_form_by_aicc_reports_the_lowest_aicc() -> None:
    compute = np.logspace(9, 12, 12)
    fit, table = select_form(compute, noisy(power_law(compute), 0.003, 5), criterion="aicc", n_bootstrap=0)
    assert fit.form == table.loc[table["aicc"].idxmin(), "form"]


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compute", "values", "form", "message"),
    [
        ([1e9, 1e10, 1e11], [0.5, 0.4, 0.3], "pow3", "at least 4 different compute"),
        ([1e9, 1e9, 1e10, 1e10, 1e11], [0.5, 0.5, 0.4, 0.4, 0.3], "pow4", "at least 5 different compute"),
        ([1e9, 1e10, np.nan, 1e12], [0.5, 0.4, 0.3, 0.2], "pow2", "NaN or infinite"),
        ([1e9, 1e10, 1e11, 1e12], [0.5, np.inf, 0.3, 0.2], "pow2", "NaN or infinite"),
        ([0.0, 1e10, 1e11, 1e12], [0.5, 0.4, 0.3, 0.2], "pow2", "positive"),
        ([-1e9, 1e10, 1e11, 1e12], [0.5, 0.4, 0.3, 0.2], "pow2", "positive"),
        ([1e10] * 5, [0.5, 0.4, 0.3, 0.2, 0.1], "pow2", "all compute values are equal"),
        ([1e9, 1e10, 1e11, 1e12], [50, 40, 30, 20], "pow2", r"\[0, 1\]"),
        ([1e9, 1e10, 1e11], [0.5, 0.4], "pow2", "one value per point"),
        ([[1e9, 1e10], [1e11, 1e12]], [0.5, 0.4, 0.3, 0.2], "pow2", "1-D"),
        (["a", "b", "c", "d"], [0.5, 0.4, 0.3, 0.2], "pow2", "numbers"),
        ([1e9, 1e10, 1e11, 1e12], [0.5, 0.4, 0.3, 0.2], "cubic", "unknown curve form"),
    ],
)
def test_bad_input_is_refused_with_a_fit_error(compute, values, form, message) -> None:
    with pytest.raises(FitError, match=message) as info:
        fit_curve(compute, values, form, n_bootstrap=0)
    assert isinstance(info.value, ScalelabError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_starts": 0}, "n_starts"),
        ({"n_bootstrap": -1}, "n_bootstrap"),
        ({"level": 1.5}, "level"),
        ({"metric": "f1"}, "unknown metric"),
        ({"metric": "loss", "n_bootstrap": 0}, None),
    ],
)
def test_settings_are_validated(kwargs: dict, message: str | None) -> None:
    y = power_law(COMPUTE)
    if message is None:
        assert fit_curve(COMPUTE, y, **kwargs).n_points == COMPUTE.size
        return
    with pytest.raises(FitError, match=message):
        fit_curve(COMPUTE, y, **kwargs)


def test_selection_and_check_refusals() -> None:
    y = power_law(COMPUTE)
    with pytest.raises(FitError, match="holdout"):
        extrapolation_check(COMPUTE, y, holdout=COMPUTE.size - 1)
    with pytest.raises(FitError, match="too few"):
        select_form([1e9, 1e10], [0.5, 0.4], forms=["pow3"])
    with pytest.raises(FitError, match="criterion"):
        select_form(COMPUTE, y, criterion="bic")
    with pytest.raises(FitError, match="tolerance"):
        select_form(COMPUTE, y, tolerance=-0.5)
    with pytest.raises(FitError, match="unknown curve form"):
        select_form(COMPUTE, y, forms=["pow3", "nope"])
    fit = fit_curve(COMPUTE, y, "pow3", n_bootstrap=0)
    with pytest.raises(FitError, match="positive"):
        fit.predict([1e9, -1.0])
    with pytest.raises(FitError, match="numbers"):
        fit.predict("big")


def test_results_are_plain_types() -> None:
    fit, table = select_form(COMPUTE, power_law(COMPUTE), forms=["pow2", "pow3"], n_bootstrap=10)
    assert isinstance(table, pd.DataFrame)
    assert all(isinstance(v, float) for v in fit.params.values())
    assert fit.predict(1e10).shape == ()
    assert fit.predict([[1e10, 1e11]]).shape == (1, 2)


# --- log-space fitting, the m4 form, flat curves, calibration -------------------------------------------


def test_m4_reproduces_an_early_plateau_curve_and_extrapolates_it() -> None:
    # M4 of Alabdulmohsin et al. 2022: (err - E) / (e0 - err)^a = (C / C0)^-c, here e0 = 0.9.
    from scipy.optimize import brentq

    def truth(c: float) -> float:
        return brentq(lambda e: (e - 0.2) / (0.9 - e) ** 2.0 - (c / 1e10) ** -0.6, 0.2 + 1e-12, 0.9 - 1e-12)

    compute = np.logspace(9, 12, 14)
    y = np.array([truth(c) for c in compute])
    fit = fit_curve(compute, y, "m4", n_bootstrap=0)
    assert np.max(np.abs(np.log(fit.predict(compute) / y))) < 2e-3
    beyond = compute[-1] * 2.0
    assert fit.predict(beyond) == pytest.approx(truth(beyond), rel=5e-3)
    assert fit.params["E"] + fit.params["A"] == pytest.approx(0.9, abs=0.05)


def test_m4_with_a_equal_one_is_mmf4() -> None:
    t = np.linspace(-4, 4, 9)
    m4 = FORMS["m4"].shape(t[None, :], np.array([[1.3]]), np.array([[0.5]]), np.array([[1.0]]))
    mmf4 = FORMS["mmf4"].shape(t[None, :], np.array([[1.3]]), np.array([[0.5]]))
    assert np.allclose(m4, mmf4, atol=1e-9)


def test_every_rate_may_be_zero_so_a_form_can_be_flat() -> None:
    for name, spec in FORMS.items():  # the first shape parameter of every form is its rate
        lo, _ = spec.shape_bounds(2.0)
        assert lo.size == 0 or lo[0] == 0.0, name
    y = np.full(COMPUTE.size, 0.3)
    fit = fit_curve(COMPUTE, y, "pow3", n_bootstrap=20)
    assert np.allclose(fit.predict([1e9, 1e15, 1e20]), 0.3, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_flat_curve_fits_flat_and_says_so(seed: int) -> None:
    y = noisy(np.full(COMPUTE.size, 0.9), 0.01, 40 + seed)
    fit, table = select_form(COMPUTE, y, n_bootstrap=20)
    assert fit.form == "flat" and fit.trend == "flat"
    assert "no decreasing trend" in fit.note
    assert fit.predict(1e15) == pytest.approx(np.mean(y), abs=0.01)
    assert fit.saturation(0.001) == COMPUTE[0]  # "already saturated": nothing to gain
    assert table.loc[table["selected"], "form"].item() == "flat"


def test_rising_curve_has_no_decreasing_trend() -> None:
    y = 0.2 + 0.02 * np.arange(COMPUTE.size)
    fit, _ = select_form(COMPUTE, y, n_bootstrap=0)
    assert fit.trend == "flat" and fit.form == "flat"
    fit, _ = select_form(COMPUTE, y, forms=["pow3"], allow_flat=False, n_bootstrap=0)
    assert fit.trend == "flat" and "no decreasing trend" in fit.note


def test_clear_trend_is_not_called_flat() -> None:
    fit, _ = select_form(COMPUTE, noisy(power_law(COMPUTE), 0.003, 8), n_bootstrap=20)
    assert fit.trend == "decreasing" and fit.form != "flat"


def test_default_selection_keeps_the_most_general_supported_form() -> None:
    fit, table = select_form(COMPUTE, noisy(power_law(COMPUTE), 0.003, 8), n_bootstrap=0)
    assert fit.form == "m4"
    few = np.logspace(9, 11, 6)
    fit, table = select_form(few, noisy(power_law(few), 0.003, 8), n_bootstrap=0)
    assert FORMS[fit.form].n_params < 5  # too few points for m4 on a held-out fold
    assert table.loc[table["form"] == "m4", "first_fold_log_rmse"].isna().all()


def test_horizon_sets_the_held_out_distance() -> None:
    y = noisy(power_law(COMPUTE), 0.003, 2)
    near = fit_curve(COMPUTE, y, "pow3", n_bootstrap=0, horizon=COMPUTE[-1] * 10 ** 0.3)
    far = fit_curve(COMPUTE, y, "pow3", n_bootstrap=0, horizon=COMPUTE[-1] * 1e6)
    default = fit_curve(COMPUTE, y, "pow3", n_bootstrap=0)
    assert near.holdout_decades == pytest.approx(0.3, abs=1e-9)
    assert far.holdout_decades == pytest.approx(1.5, abs=1e-9)  # at most half the 3-decade range
    assert default.holdout_decades == pytest.approx(0.75, abs=1e-9)
    with pytest.raises(FitError, match="horizon"):
        fit_curve(COMPUTE, y, "pow3", horizon=-1.0)


def test_wrong_form_is_caught_by_calibration_and_its_interval_widened() -> None:
    # An exponential form on power-law data misses the held-out points by far more than its own spread.
    compute = np.logspace(9, 12, 16)
    y = noisy(power_law(compute), 0.002, 3)
    good = fit_curve(compute, y, "pow3", n_bootstrap=100)
    bad = fit_curve(compute, y, "exp3", n_bootstrap=100)
    assert bad.calibration > max(1.5, good.calibration)
    assert "widened" in bad.note


def test_predictive_interval_covers_held_out_points_of_noisy_power_laws() -> None:
    # Fit on the first 12 of 16 points, predict the last 4 (0.75 decades further): about 95% should be
    # covered. The noise is relative (2%), as the fit's log residuals assume.
    compute = np.logspace(9, 12, 16)
    hits, n = 0, 0
    for seed in range(6):
        y = power_law(compute) * np.exp(np.random.default_rng(200 + seed).normal(0.0, 0.02, compute.size))
        fit = fit_curve(compute[:12], y[:12], "pow3", n_bootstrap=60, horizon=compute[-1], seed=seed)
        lower, upper = fit.band(compute[12:])
        hits += int(np.sum((lower <= y[12:]) & (y[12:] <= upper)))
        n += 4
    assert 0.75 <= hits / n <= 1.0


def test_repeated_evaluations_are_averaged_not_counted_as_evidence() -> None:
    once = fit_curve(COMPUTE, power_law(COMPUTE), "pow3", n_bootstrap=0)
    thrice = fit_curve(np.repeat(COMPUTE, 3), np.repeat(power_law(COMPUTE), 3), "pow3", n_bootstrap=0)
    assert thrice.n_points == 3 * COMPUTE.size
    assert thrice.params == pytest.approx(once.params, rel=1e-6)


def test_few_points_choose_the_form_by_held_out_extrapolation_not_by_generality() -> None:
    """Five points cannot pin down a four-parameter form: the default then chooses as
    criterion='extrapolation' does (forward folds, else the simplest trending form), not the most general."""
    x = np.arange(1.0, 6.0)
    y = 0.3 + 0.5 * x ** -0.7
    fit, table = select_form(x, y, metric="loss", horizon=9.0)
    by_extrapolation, _ = select_form(x, y, metric="loss", horizon=9.0, criterion="extrapolation")
    general = table[(table["rmse"].notna()) & (table["form"] != "flat")]["n_params"].max()
    assert general == 4  # a four-parameter form could be fitted, and the 'general' rule would keep it
    assert fit.form == by_extrapolation.form and table.loc[table["selected"], "n_params"].item() < general
