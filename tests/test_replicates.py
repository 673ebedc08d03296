"""Per-network intervals from the seed spread pooled over a study's networks."""

import numpy as np
import pandas as pd
import pytest

from scalelab.analysis.replicates import mean_intervals, pooled_spread
from scalelab.analysis.results import network_means


def test_two_seeds_that_tie_get_the_studys_seed_spread_not_a_zero_width_interval():
    groups = [[0.50, 0.50], [0.60, 0.64], [0.70, 0.66]]
    sd, df = pooled_spread(groups)
    assert df == 3 and sd == pytest.approx(np.sqrt((2 * 0.02**2 + 2 * 0.02**2) / 3))
    tied = mean_intervals(groups)[0]
    assert tied is not None and tied[0] < 0.48 and tied[1] > 0.52


def test_one_replicate_has_no_interval_and_no_pairs_no_spread():
    assert mean_intervals([[0.5], [0.6, 0.7]])[0] is None
    assert pooled_spread([[0.5], [0.6]]) == (0.0, 0)
    assert mean_intervals([[0.5], [0.6]]) == [None, None]


def test_intervals_hold_the_true_mean_95_percent_of_the_time_on_simulated_studies():
    rng = np.random.default_rng(0)
    truth = np.linspace(0.5, 0.8, 9)
    held = []
    for _ in range(600):  # 9 networks x 2 seeds, 2 points of seed noise: each interval has 9 degrees of freedom
        groups = [list(mu + 0.02 * rng.standard_normal(2)) for mu in truth]
        held += [lo <= mu <= hi for mu, (lo, hi) in zip(truth, mean_intervals(groups))]
    assert 0.935 < np.mean(held) < 0.965  # 5,400 intervals: a binomial sd of 0.3 points


def test_the_results_table_pools_within_each_study():
    rows = [dict(study=s, model=m, status="complete", val_acc=v, test_acc=None)
            for s, m, v in [("a", "x", 0.5), ("a", "x", 0.5), ("a", "y", 0.6), ("a", "y", 0.64),
                            ("b", "x", 0.5), ("b", "x", 0.5), ("b", "z", 0.9)]]
    means = network_means(pd.DataFrame(rows)).set_index(["study", "model"])
    lo, hi = means.loc[("a", "x"), ["val_acc_lower", "val_acc_upper"]]
    assert lo < 0.5 < hi  # pooled with y's spread
    assert means.loc[("b", "x"), "val_acc_lower"] == means.loc[("b", "x"), "val_acc_upper"] == 0.5  # b: no spread
    assert np.isnan(means.loc[("b", "z"), "val_acc_lower"])
