"""Extrapolating a curve from finished peers on the same schedule: calibration on simulated studies whose
truth is known, and the refusals."""

import math

import numpy as np
import pytest

from scalelab.analysis.fit import FitError
from scalelab.analysis.peers import MIN_PEERS, predict_from_peers


@pytest.mark.parametrize("peers", [3, 8])
def test_the_interval_holds_the_truth_at_its_level(peers):
    """Studies whose networks' log error ratios (end / now) scatter around a shared mean: the 95% interval
    holds the end error of a new network 95% of the time, and the centre is unbiased in log."""
    rng = np.random.default_rng(peers)
    held, misses = 0, []
    for _ in range(2000):
        mu, sd = rng.uniform(-1.2, -0.2), rng.uniform(0.02, 0.3)
        now = rng.uniform(0.2, 0.7, size=peers + 1)
        end = now * np.exp(rng.normal(mu, sd, size=peers + 1))
        pred = predict_from_peers(now[0], now[1:], end[1:], level=0.95)
        held += pred.lower <= end[0] <= pred.upper
        misses.append(math.log(pred.value / end[0]))
        assert pred.lower < pred.value < pred.upper and pred.peers == peers
    assert 0.93 < held / 2000 < 0.97
    assert abs(np.mean(misses)) < 0.01


def test_an_annealed_end_is_predicted_where_the_curve_alone_cannot_show_it():
    """Every peer's error halves between the rung and the end (the decay of the learning rate does it):
    the prediction halves the new curve's error too, though nothing in that curve says so."""
    pred = predict_from_peers(0.4, [0.30, 0.35, 0.5, 0.45], [0.15, 0.18, 0.24, 0.23])
    assert pred.value == pytest.approx(0.2, rel=0.05) and pred.lower < 0.2 < pred.upper


def test_too_few_peers_or_a_zero_error_are_refused():
    with pytest.raises(FitError, match=f"needs {MIN_PEERS}"):
        predict_from_peers(0.3, [0.3, 0.4], [0.2, 0.3])
    with pytest.raises(FitError, match="positive"):
        predict_from_peers(0.3, [0.3, 0.4, 0.0], [0.2, 0.3, 0.1])
    with pytest.raises(ValueError, match="pair up"):
        predict_from_peers(0.3, [0.3, 0.4, 0.5], [0.2, 0.3])
