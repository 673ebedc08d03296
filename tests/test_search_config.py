"""Study settings, study files, targets, the reward, the search space and the plans (no training)."""

import math
from pathlib import Path

import optuna
import pytest

from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.arch.zoo import make_spec
from scalelab.errors import SearchError
from scalelab.search import build, load_study_file
from scalelab.search.config import GridSettings, SweepSettings, default_study_name
from scalelab.search.grid import axis, candidates
from scalelab.search.plans import family_points, sweep_points
from scalelab.search.points import dedupe, point
from scalelab.search.space import CHANNEL_MULTIPLIERS, suggest_spec
from scalelab.search.targets import parse_target, reward

STUDIES = Path(__file__).parent.parent / "studies"


@pytest.mark.parametrize("text, multiple, amount", [
    ("2x", 2.0, None), ("1.5X", 1.5, None), ("800M", None, 8e8), ("1.2G", None, 1.2e9), ("5e8", None, 5e8),
])
def test_parse_target(text, multiple, amount):
    t = parse_target(text, "--target-flops")
    assert (t.multiple, t.amount) == (multiple, amount)
    assert t.amount_for(4e8) == pytest.approx(amount or multiple * 4e8)


@pytest.mark.parametrize("text", ["2y", "x", "-2x", "0x", "abc", ""])
def test_bad_target_says_how_to_write_one(text):
    with pytest.raises(SearchError, match="--target-flops"):
        parse_target(text, "--target-flops")


def test_latency_target_accepts_ms():
    assert parse_target("12ms", "--target", "ms").amount == 12.0


def test_reward_penalises_cost_above_target():
    assert reward(0.5, 100, 100, -0.07) == 0.5
    assert reward(0.5, 200, 100, -0.07) == pytest.approx(0.5 * 2**-0.07)
    assert reward(0.5, 50, 100, -0.07) > 0.5


def test_every_study_file_builds():
    files = sorted(STUDIES.glob("*.toml"))
    names = {f.stem for f in files}
    assert {"smoke_grid", "cifar10_mini_baseline", "cifar10_grid_2x", "cifar10_sweeps"} <= names
    for f in files:
        config, options = build(load_study_file(f))
        assert config.kind in ("baseline", "grid", "family", "sweep", "compare") and options.study


def test_flags_override_the_file_key_by_key():
    data = load_study_file(STUDIES / "smoke_grid.toml")
    config, options = build(data, {"train": {"epochs": 3}, "workers": 2, "search": {"target": "4x"}})
    assert config.train.epochs == 3 and config.train.max_images == data["train"]["max_images"]
    assert options.workers == 2 and config.search.target == "4x"
    assert config.search.alpha == tuple(data["search"]["alpha"])


@pytest.mark.parametrize("data, message", [
    ({"kind": "grids"}, "study kind must be one of"),
    ({"kind": "grid", "search": {"targte": "2x"}}, "unknown setting(s) targte in [search]"),
    ({"kind": "grid", "train": {"epoch": 1}}, "unknown setting(s) epoch in [train]"),
    ({"kind": "grid", "search": {"target": "2y"}}, "cannot read --target-flops '2y'"),
    ({"kind": "grid", "search": {"alpha": [2.0, 1.0]}}, "alpha range"),
    ({"kind": "baseline", "search": {"objective": "best"}}, "unknown objective 'best'"),
    ({"kind": "sweep", "search": {"multiples": [0.5]}}, "multiples must be numbers >= 1"),
    ({"kind": "compare"}, "at least one model"),
    ({"kind": "grid", "val_fraction": 0.0}, "--val-fraction"),
])
def test_bad_settings_are_one_clear_error(data, message):
    with pytest.raises(SearchError) as info:
        build(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_settings_round_trip_through_the_stored_dict():
    config, _ = build({"kind": "sweep", "search": {"multiples": [1, 2]}, "train": {"epochs": 2}})
    from scalelab.search.config import config_from_dict
    assert config_from_dict(config.to_dict()) == config
    assert default_study_name(config) == "sweep-efficientnet_b0_32-cifar10-mini"


def test_coefficients_file_fills_alpha_beta_gamma(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"alpha": 1.3, "beta": 1.05, "gamma": 1.2, "val_acc": 0.5}')
    config, _ = build({"kind": "family", "search": {"coefficients": str(path), "gamma": 1.1}})
    assert (config.search.alpha, config.search.beta, config.search.gamma) == (1.3, 1.05, 1.1)
    with pytest.raises(SearchError, match="cannot read alpha, beta, gamma"):
        build({"kind": "family", "search": {"coefficients": str(tmp_path / "missing.json")}})


def test_search_space_choices_and_rounding():
    skeleton = NetworkSpec(name="sk", stem=StemSpec(8, 3, 1), resolution=16, num_classes=10,
                           stages=(StageSpec("mbconv", 1, 16, 1, 3, 1.0, 0.25), StageSpec("mbconv", 2, 24, 2)),
                           head=HeadSpec(channels=32))
    params = {"s1_op": "fused_mbconv", "s1_expand": 4, "s1_kernel": 5, "s1_se": 0.0, "s1_layers": -1,
              "s1_width": 1.25, "s2_op": "mbconv", "s2_expand": 6, "s2_kernel": 3, "s2_se": 0.25,
              "s2_layers": 1, "s2_width": 0.75}
    spec = suggest_spec(optuna.trial.FixedTrial(params), skeleton)
    s1, s2 = spec.stages
    assert (s1.block, s1.expand_ratio, s1.kernel, s1.se_ratio, s1.layers, s1.out_channels) == \
        ("fused_mbconv", 4.0, 5, 0.0, 1, 24)  # 1 - 1 floors at 1 layer; 16 * 1.25 = 20 rounds to 24
    # 24 * 0.75 = 18: 16 would lose over 10%, so round_filters gives 24
    assert (s2.block, s2.layers, s2.out_channels, s2.stride) == ("mbconv", 3, 24, 2)
    assert spec.stem == skeleton.stem and spec.head == skeleton.head and 0.75 in CHANNEL_MULTIPLIERS


def test_grid_axis_keeps_decimal_steps():
    assert axis(1.0, 1.5, 0.1) == [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]


def test_grid_candidates_filter_on_measured_flops_and_dedupe():
    base = make_spec("baseline_convnet", num_classes=10, width=0.25, resolution=16)
    fake_flops = {21: 180, 22: 196, 23: 300}  # by resolution in px, unlike the prediction gamma^2
    settings = GridSettings(target="2x", alpha=(1.0, 1.0), beta=(1.0, 1.0), gamma=(1.3, 1.45), step=0.05,
                            tolerance=0.2, measured_tolerance=0.05)
    found = candidates(base, 100, 2.0, settings, measure=lambda s: fake_flops[s.resolution])
    got = [(c.gamma, c.status, c.measured) for c in found]
    # 16 px x gamma: 1.3 -> 21 px, 1.35 and 1.4 -> 22 px (one network), 1.45 -> 23 px
    assert got == [(1.3, "off-target", 1.8), (1.35, "train", 1.96), (1.4, "duplicate", 1.96),
                   (1.45, "off-target", 3.0)]
    assert all(abs(c.predicted - c.gamma**2) < 1e-9 for c in found)


def test_grid_without_a_point_on_target_is_an_error():
    base = make_spec("baseline_convnet", num_classes=10, width=0.25, resolution=16)
    with pytest.raises(SearchError, match="no grid point has alpha\\*beta\\^2\\*gamma\\^2 within 5% of 50"):
        candidates(base, 100, 50.0, GridSettings(), measure=lambda s: 100)
    with pytest.raises(SearchError, match="none measures within 10% of 2x"):
        candidates(base, 100, 2.0, GridSettings(), measure=lambda s: 100)


def test_sweep_points_match_flops_multiples():
    base = make_spec("efficientnet_b0_32", num_classes=10)
    points = dedupe(sweep_points(base, SweepSettings(multiples=(1.0, 4.0))))
    by_dim = {p.attrs["dimension"]: p for p in points}
    assert set(by_dim) == {None, "width", "depth", "resolution", "compound"}
    assert by_dim["width"].attrs["width"] == 2.0 and by_dim["depth"].attrs["depth"] == 4.0
    assert by_dim["resolution"].spec.resolution == 64
    c = by_dim["compound"].attrs
    assert c["depth"] * c["width"] ** 2 * c["resolution"] ** 2 == pytest.approx(4.0)
    assert all(p.attrs["aliases"] == [] for p in points)


def test_family_phis_from_flops_targets():
    base = make_spec("efficientnet_b0_32", num_classes=10)
    from scalelab.search.config import FamilySettings
    growth = 1.2 * 1.1**2 * 1.15**2
    points = family_points(base, 1000, FamilySettings(targets=("4x", "8000")))
    assert [p.attrs["phi"] for p in points] == pytest.approx([math.log(4) / math.log(growth),
                                                             math.log(8) / math.log(growth)])


def test_dedupe_records_aliases():
    base = make_spec("baseline_convnet", num_classes=10)
    points = dedupe([point(base, alpha=1.0), point(base, alpha=1.01), point(make_spec("resnet18_32"))])
    assert len(points) == 2 and points[0].attrs["aliases"][0]["alpha"] == 1.01
