"""Alternating rounds: the per-round ratio cancels a load that changes between rounds; a wide spread warns."""

import pytest
import torch

from scalelab.errors import ScalelabError
from scalelab.rounds import WIDE_SPREAD, Machine, Spread, alternate, warning


def test_loops_alternate_and_the_order_flips_every_round():
    calls = []
    figures = alternate({"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert figures == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}


def test_per_round_ratio_cancels_a_load_that_changes_between_rounds():
    """Loop a costs 1 unit of work, b 3 units; the machine is 1x, 4x then 0.5x as slow in successive
    rounds (both loops of a round see the same load). Each loop's own figures spread 8-fold; their
    ratio is exactly 3 in every round."""
    slowdowns = iter([1.0, 1.0, 4.0, 4.0, 0.5, 0.5])

    def throughput(work: float):
        return lambda: 1.0 / (work * next(slowdowns))

    figures = alternate({"a": throughput(1.0), "b": throughput(3.0)}, 3)
    assert max(figures["a"]) / min(figures["a"]) == pytest.approx(8.0)
    ratio = Spread.ratio(figures["a"], figures["b"])
    assert ratio.median == pytest.approx(3.0) and ratio.relative_spread == pytest.approx(0.0, abs=1e-12)
    assert not ratio.wide and warning("a / b", ratio) is None


def test_median_range_and_relative_spread():
    s = Spread((2.0, 1.0, 3.0, 2.5, 1.5))
    assert (s.median, s.low, s.high) == (2.0, 1.0, 3.0)
    assert s.relative_spread == pytest.approx(1.0)
    assert s.to_dict()["rounds"] == [2.0, 1.0, 3.0, 2.5, 1.5] and s.to_dict()["wide"] is True
    assert s.scaled(100).median == 200.0


def test_a_wide_spread_warns_and_a_narrow_one_does_not():
    narrow = Spread((2.0, 2.1, 2.2))  # 10% of the median
    wide = Spread((1.0, 2.0, 2.5))  # 75% of the median
    assert not narrow.wide and warning("x", narrow) is None
    line = warning("baseline's fp32 ratio", wide)
    assert wide.wide and line.startswith("warning: baseline's fp32 ratio varied 75% across rounds")
    assert f"{100 * WIDE_SPREAD:.0f}%" in line and "\n" not in line


def test_text_gives_every_figure_its_unit():
    assert Spread((2.0, 1.9, 2.3)).text("x") == "2.00x median of 3 rounds (range 1.90x to 2.30x, 20% of the median)"
    assert Spread((0.5,)).text(" ms") == "0.50 ms in 1 round (no spread measured)"


def test_ratio_needs_matching_rounds_and_rounds_must_be_positive():
    with pytest.raises(ValueError):
        Spread.ratio([1.0, 2.0], [1.0])
    with pytest.raises(ScalelabError, match="--rounds must be at least 1"):
        alternate({"a": lambda: 1.0}, 0)


def test_machine_reports_threads_cores_and_load():
    m = Machine.now()
    assert m.torch_threads == torch.get_num_threads() and m.cores >= 1
    assert m.load_1min >= 0 and set(m.to_dict()) == {"load_1min", "load_5min", "load_15min", "cores", "torch_threads"}
