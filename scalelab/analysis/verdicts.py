"""Calibrated verdicts on one scaling dimension against another at equal FLOPs.

The question "is compound scaling more accurate than scaling width alone, at the same FLOPs?" is
answered from the trials themselves, with every replicate, by one linear model on the union of the two
dimensions' trials (the unscaled base network, shared by both, included once)::

    val_acc = f(log FLOPs) + delta * [trial is of dimension a] * s(FLOPs) + seed effect + noise

``f`` is one smooth curve shared by both dimensions: quadratic in log FLOPs where the trials span six or
more distinct FLOPs values, linear where they span three to five (a quadratic there would leave almost no
degrees of freedom). Both dimensions start from the same base network, so at its FLOPs they cannot
differ: the difference grows from zero there, linearly in log FLOPs, ``s = log(F / F_base) /
log(F_ref / F_base)``, and ``delta`` is the answer at ``F_ref``, the largest FLOPs both dimensions
reached: how much more accurate dimension ``a`` is than ``b`` there. (Without base-network trials, ``s``
is 1: one offset over the FLOPs both span.) The seed effects pair the trials of one training seed
across networks (a seed that gives every network a lucky split counts once, not as a difference between
dimensions); with one seed per network they are one intercept.

The interval on ``delta`` is a t interval from the residual variance, which with one seed per network is
the scatter of the networks around the shared curve. With replicates the residual variance also holds
the seed-to-seed ("pure error") variance; a lack-of-fit F test then asks whether the networks scatter
around the curve more than the seed-to-seed spread explains (a curve of the wrong shape, or networks
that differ for reasons of their own). If they do (p < 0.05) the curve is not used: the answer is read
off the measured networks instead (``variance`` "bracket"). At ``F_ref`` one dimension has a network (its
largest); the other dimension's accuracy there lies between those of its two networks that bracket
``F_ref`` in FLOPs (the shared base network counts as the lower one), assuming accuracy moves
monotonically between two adjacent networks of one dimension. The difference is stated as the log-FLOPs
interpolation between the two, and its interval spans both ends, each with its seed-paired t bound from the
seed-to-seed spread: so "width is more accurate" can mean that width's network beats compound's even
where compound's has more FLOPs. Without replicates, or where no pair of networks brackets ``F_ref``, the
interval is built from the scatter between networks (the lack-of-fit mean square, on its own degrees of
freedom), so that replicates never make a misfit look precise.

Several comparisons drawn from one study (compound against width, depth and resolution) are made at a
simultaneous level: each interval at ``1 - (1 - level) / m`` (Bonferroni), so that on a study where no
dimension differs, the chance that *any* of its verdicts claims a difference is at most ``1 - level``.

A verdict is "a" (the interval is above zero), "b" (below zero) or "none" (it covers zero: no clear
difference). ``detectable`` is the smallest true difference the same design would detect with the stated
power: ``(t_{1-alpha/2} + t_{power}) * se`` on the same degrees of freedom (about 2.8 standard errors for
80 % power with many degrees of freedom). Identical accuracies (every trial at chance, say) give a
difference of exactly zero with a zero-width interval, and the verdict "none", flagged ``identical``.

The calibration of all of this (false-positive rate on simulated null sweeps, power against true
differences) is :mod:`scalelab.analysis.calibration` and ``scalelab bench comparisons``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

POWER = 0.8
"""Power at which :attr:`Comparison.detectable` is stated."""
LACK_OF_FIT_P = 0.05
"""Below this p-value of the lack-of-fit F test, intervals use the scatter between networks."""
QUADRATIC_FROM = 6
"""Distinct FLOPs values from which the shared curve is quadratic in log FLOPs (linear below)."""


@dataclass(frozen=True)
class Comparison:
    """Dimension ``a`` against ``b`` at equal FLOPs; accuracies and differences as fractions.

    ``diff`` = a - b at ``flops_ref`` (the largest FLOPs both reached) with its interval
    ``lower``..``upper`` at ``interval_level`` (``level`` over a family of ``comparisons``); ``verdict`` is "a", "b" or "none"; ``answered`` is False (with ``note`` saying why)
    when the trials cannot carry the model, and every number is then NaN. ``variance`` says where the
    interval's noise comes from: "trials" (the model's residuals), "networks" (their scatter about the
    curve) or "bracket" (measured networks: ``bracketed`` names the dimension whose networks at FLOPs
    ``bracket_lo`` and ``bracket_hi`` bracket ``flops_ref``).
    """

    a: str
    b: str
    answered: bool
    verdict: str
    diff: float
    lower: float
    upper: float
    se: float
    df: int
    level: float
    interval_level: float
    comparisons: int
    detectable: float
    power: float
    trials: int
    networks: int
    seeds: int
    curve: str
    variance: str
    lack_of_fit_p: float
    flops_lo: float
    flops_ref: float
    identical: bool
    note: str = ""
    bracketed: str = ""
    bracket_lo: float = float("nan")
    bracket_hi: float = float("nan")


def compare_dimensions(points: pd.DataFrame, a: str, b: str, *, level: float = 0.95, comparisons: int = 1,
                       power: float = POWER) -> Comparison:
    """Dimension ``a`` against ``b`` from the rows of a results table (complete trials).

    ``points`` holds each trial of both dimensions and of the base network (``dimension`` NaN) once; rows
    of other dimensions are left out. Networks are told apart by ``model`` (or by FLOPs where that column
    is absent), seeds by ``seed``.
    """
    rows = points[points["dimension"].isna() | points["dimension"].isin([a, b])]
    base = rows["dimension"].isna()
    base_flops = float(rows.loc[base, "flops"].median()) if base.any() else None
    network = rows["model"].astype(str).to_numpy() if "model" in rows else rows["flops"].to_numpy()
    seed = rows["seed"].to_numpy(float) if "seed" in rows else np.zeros(len(rows))
    return offset_difference(
        rows["flops"].to_numpy(float), rows["val_acc"].to_numpy(float), (rows["dimension"] == a).to_numpy(),
        network, seed, in_b=(rows["dimension"] == b).to_numpy(), base_flops=base_flops, a=a, b=b, level=level,
        comparisons=comparisons, power=power)


def offset_difference(flops: np.ndarray, acc: np.ndarray, in_a: np.ndarray, network: np.ndarray,
                      seed: np.ndarray, *, in_b: np.ndarray | None = None, base_flops: float | None = None,
                      a: str = "a", b: str = "b", level: float = 0.95, comparisons: int = 1,
                      power: float = POWER) -> Comparison:
    """The model of the module docstring on arrays: one entry per trial; ``in_a`` marks dimension ``a``,
    ``in_b`` dimension ``b`` (default: every trial not of ``a``; the rest are the shared base network, at
    ``base_flops``), ``network`` and ``seed`` identify replicates."""
    design = Design(flops, in_a, network, seed, in_b=in_b, base_flops=base_flops)
    acc = np.asarray(acc, float)
    interval_level = 1.0 - (1.0 - level) / max(comparisons, 1)
    base = dict(a=a, b=b, level=level, interval_level=interval_level, comparisons=comparisons, power=power,
                trials=design.n, networks=design.networks, seeds=design.seeds, flops_lo=design.flops_lo,
                flops_ref=design.flops_ref, curve=design.curve)
    problem = design.problem or ("" if np.all(np.isfinite(acc)) else "needs a finite accuracy on every trial")
    if problem:
        nan = float("nan")
        return Comparison(**base, answered=False, verdict="none", diff=nan, lower=nan, upper=nan, se=nan, df=0,
                          detectable=nan, variance="", lack_of_fit_p=nan, identical=False,
                          note=problem.format(a=a, b=b))
    est = design.estimate(acc[:, None], level=interval_level, power=power)
    identical = bool(est["identical"][0])
    verdict = {1: "a", -1: "b", 0: "none"}[int(est["verdict"][0])]
    note = (f"every one of the {design.n} trials has the same validation accuracy ({100 * acc[0]:.1f} %)"
            if identical else "")
    bracket = {}
    if est["bracket"][0]:
        side, lo, hi = design.bracket.bracketed
        bracket = dict(bracketed=a if side == "a" else b, bracket_lo=lo, bracket_hi=hi)
    variance = "bracket" if est["bracket"][0] else "networks" if est["networks"][0] else "trials"
    return Comparison(**base, answered=True, verdict=verdict, identical=identical, note=note, variance=variance,
                      df=int(est["df"][0]), **bracket,
                      **{k: float(est[k][0]) for k in ("diff", "lower", "upper", "se", "detectable", "lack_of_fit_p")})


class Design:
    """The model's design for one set of trials; :meth:`estimate` fits it to one or many accuracy columns
    (many: the simulations of :mod:`scalelab.analysis.calibration`, which share one design).

    ``problem`` is non-empty (a message with ``{a}`` and ``{b}`` to fill) when the trials cannot carry it.
    """

    def __init__(self, flops: np.ndarray, in_a: np.ndarray, network: np.ndarray, seed: np.ndarray, *,
                 in_b: np.ndarray | None = None, base_flops: float | None = None) -> None:
        flops, in_a = np.asarray(flops, float), np.asarray(in_a, bool)
        network, seed = np.asarray(network), np.asarray(seed, float)
        in_b = ~in_a if in_b is None else np.asarray(in_b, bool)
        self.n, self.networks = len(flops), len(np.unique(network))
        self.seeds = int(np.unique(network, return_counts=True)[1].max()) if self.n else 0  # replicates
        self.flops_lo = float(flops.min()) if self.n else float("nan")
        both = in_a.any() and in_b.any()
        self.flops_ref = float(min(flops[in_a].max(), flops[in_b].max())) if both else float("nan")
        self.curve, self.problem = "", ""
        if not both:
            self.problem = "needs trials of both {a} and {b}"
            return
        if not np.all(np.isfinite(flops)) or np.any(flops <= 0):
            self.problem = "needs positive FLOPs on every trial"
            return
        n_flops = len(np.unique(flops))
        if n_flops < 3:
            self.problem = f"needs trials at three or more distinct FLOPs values (has {n_flops})"
            return
        x = np.log(flops)
        z = (x - x.mean()) / x.std()
        if base_flops is not None and self.flops_ref > base_flops:
            growth = np.log(flops / base_flops) / np.log(self.flops_ref / base_flops)
        else:
            growth = np.ones_like(x)
        blocks = _blocks(seed, network)
        for degree in ((2, 1) if n_flops >= QUADRATIC_FROM else (1,)):
            X = np.column_stack([np.ones_like(z), *(z**k for k in range(1, degree + 1)), in_a * growth, *blocks])
            if np.linalg.matrix_rank(X) == X.shape[1]:
                break
        else:
            self.problem = "the FLOPs of {a} and {b} do not overlap enough to compare them at equal FLOPs"
            return
        self.curve = "quadratic" if degree == 2 else "linear"
        self.p = X.shape[1]
        self.df_res = self.n - self.p
        if self.df_res < 1:
            self.problem = (f"{self.n} trials for {self.p} parameters: no degrees of freedom left for the "
                            f"trial-to-trial noise")
            return
        self.offset = 1 + degree  # the column of delta
        self.pinv = np.linalg.pinv(X)
        self.X = X
        self.var_factor = float(np.linalg.inv(X.T @ X)[self.offset, self.offset])
        # The saturated model for the lack-of-fit test: one mean per network, the same seed effects.
        sat = np.column_stack([(network[:, None] == np.unique(network)[None, :]).astype(float), *blocks])
        sat_rank = int(np.linalg.matrix_rank(sat))
        self.df_pure, self.df_lof = self.n - sat_rank, sat_rank - self.p
        self.sat, self.sat_pinv = sat, np.linalg.pinv(sat)
        self.bracket = (Bracket.of(flops, in_a, in_b, network, self.sat_pinv, self.flops_ref)
                        if self.df_pure >= 1 else None)

    def estimate(self, acc: np.ndarray, *, level: float, power: float = POWER) -> dict[str, np.ndarray]:
        """Fit every column of ``acc`` (trials x columns). Arrays per column: diff, se, df, lower, upper
        (interval at ``level``), verdict (1: a above b, -1: below, 0: no clear difference), detectable,
        lack_of_fit_p (NaN without replicates), networks (True where the interval uses the scatter
        between networks), identical (every trial the same accuracy)."""
        y = acc - acc.mean(axis=0)  # centred: identical accuracies give exact zeros, not rounding noise
        coef = self.pinv @ y
        rss = np.sum((y - self.X @ coef) ** 2, axis=0)
        diff = coef[self.offset]
        s2, df = rss / self.df_res, np.full(y.shape[1], float(self.df_res))
        lof_p, networks = np.full(y.shape[1], np.nan), np.zeros(y.shape[1], bool)
        bracketed = np.zeros(y.shape[1], bool)
        if self.df_pure >= 1 and self.df_lof >= 1:
            coef_sat = self.sat_pinv @ y
            rss_pure = np.sum((y - self.sat @ coef_sat) ** 2, axis=0)
            ss_lof = np.maximum(rss - rss_pure, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                f_stat = (ss_lof / self.df_lof) / (rss_pure / self.df_pure)
            lof_p = np.where(rss_pure > 0, special.fdtrc(self.df_lof, self.df_pure, np.nan_to_num(f_stat)),
                             np.where(ss_lof > 0, 0.0, 1.0))
            misfit = lof_p < LACK_OF_FIT_P
            if self.bracket is not None:
                bracketed = misfit
            else:
                networks = misfit
                s2 = np.where(networks, ss_lof / self.df_lof, s2)
                df = np.where(networks, float(self.df_lof), df)
        identical = np.ptp(acc, axis=0) == 0
        se = np.where(identical, 0.0, np.sqrt(np.maximum(s2, 0.0) * self.var_factor))
        diff = np.where(identical, 0.0, diff)
        t_crit = special.stdtrit(df, 1.0 - (1.0 - level) / 2.0)
        lower, upper = diff - t_crit * se, diff + t_crit * se
        if bracketed.any():
            b = self.bracket.estimate(coef_sat, rss_pure / self.df_pure, self.df_pure, level)
            diff, se = np.where(bracketed, b["diff"], diff), np.where(bracketed, b["se"], se)
            lower, upper = np.where(bracketed, b["lower"], lower), np.where(bracketed, b["upper"], upper)
            df = np.where(bracketed, float(self.df_pure), df)
            t_crit = np.where(bracketed, b["t_crit"], t_crit)
        verdict = np.where(lower > 0, 1, np.where(upper < 0, -1, 0))
        detectable = np.where(identical, np.nan, (t_crit + special.stdtrit(df, power)) * se)
        return dict(diff=diff, se=se, df=df, lower=lower, upper=upper, verdict=verdict, detectable=detectable,
                    lack_of_fit_p=lof_p, networks=networks, bracket=bracketed, identical=identical)


@dataclass(frozen=True)
class Bracket:
    """The comparison at ``F_ref`` between measured networks: ``m`` (the largest network of the dimension
    that reached less far) against the other dimension's networks ``lo`` and ``hi`` that bracket ``F_ref``.

    ``ends`` holds the contrasts (rows; columns: the saturated model's coefficients) a - b with ``lo`` and
    with ``hi``, ``factors`` their variance factors; ``weight`` is the log-FLOPs position of ``F_ref``
    between ``lo`` (0) and ``hi`` (1). ``bracketed`` is ("a" or "b", FLOPs of ``lo``, FLOPs of ``hi``).
    """

    ends: np.ndarray
    factors: np.ndarray
    weight: float
    bracketed: tuple[str, float, float]

    @classmethod
    def of(cls, flops: np.ndarray, in_a: np.ndarray, in_b: np.ndarray, network: np.ndarray,
           sat_pinv: np.ndarray, flops_ref: float) -> Bracket | None:
        """None where no network of the other dimension (or the base) lies at or below ``F_ref``. The networks
        are indexed as the saturated model's columns (``np.unique`` order), whose pseudo-inverse is ``sat_pinv``."""
        _, first = np.unique(network, return_index=True)
        net_flops = flops[first]
        side = np.where(in_a[first], "a", np.where(in_b[first], "b", ""))
        reached = "a" if net_flops[side == "a"].max() <= net_flops[side == "b"].max() else "b"
        other = "b" if reached == "a" else "a"
        m = int(np.flatnonzero((side == reached) & (net_flops == flops_ref))[0])
        below = np.flatnonzero(((side == other) | (side == "")) & (net_flops <= flops_ref))
        above = np.flatnonzero((side == other) & (net_flops >= flops_ref))
        if below.size == 0 or above.size == 0:
            return None
        lo, hi = int(below[np.argmax(net_flops[below])]), int(above[np.argmin(net_flops[above])])
        sign = 1.0 if reached == "a" else -1.0  # a - b
        ends = np.zeros((2, sat_pinv.shape[0]))
        for row, x in enumerate((lo, hi)):
            ends[row, m], ends[row, x] = sign, -sign
        factors = np.sum((ends @ sat_pinv) ** 2, axis=1)  # c' (S'S)^+ c = |c' S^+|^2
        span = np.log(net_flops[hi] / net_flops[lo])
        weight = float(np.log(flops_ref / net_flops[lo]) / span) if span > 0 else 0.0
        return cls(ends, factors, weight, (other, float(net_flops[lo]), float(net_flops[hi])))

    def estimate(self, coef_sat: np.ndarray, s2: np.ndarray, df: int, level: float) -> dict[str, np.ndarray]:
        """Per column: the interpolated difference, the interval spanning both ends (each end's one-sided
        bound at ``1 - (1 - level) / 2``, so that the span holds the truth with at least ``level``), the
        larger of the two ends' standard errors and the t quantile used."""
        ends = self.ends @ coef_sat
        se = np.sqrt(np.maximum(s2, 0.0)[None, :] * self.factors[:, None])
        t_crit = float(special.stdtrit(df, 1.0 - (1.0 - level) / 2.0))
        return dict(diff=(1.0 - self.weight) * ends[0] + self.weight * ends[1], se=se.max(axis=0),
                    lower=(ends - t_crit * se).min(axis=0), upper=(ends + t_crit * se).max(axis=0), t_crit=t_crit)


def _blocks(seed: np.ndarray, network: np.ndarray) -> list[np.ndarray]:
    """Indicator columns of the seeds shared by two or more networks, all but the most common one (the
    intercept); a seed only one network was trained with pairs nothing and joins the reference."""
    key = np.where(np.isnan(seed), -np.inf, seed)
    shared = [s for s in np.unique(key) if len(np.unique(network[key == s])) >= 2]
    if len(shared) < 2:
        return []
    counts = {s: int(np.sum(key == s)) for s in shared}
    reference = max(shared, key=lambda s: (counts[s], -s))
    return [(key == s).astype(float) for s in shared if s != reference]


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval on a binomial proportion."""
    alpha = 1.0 - level
    lo = 0.0 if successes == 0 else float(special.betaincinv(successes, trials - successes + 1, alpha / 2))
    hi = 1.0 if successes == trials else float(special.betaincinv(successes + 1, trials - successes, 1 - alpha / 2))
    return lo, hi
