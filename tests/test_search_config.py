"""Study settings, study files, targets, the reward, the search space and the plans (no training)."""

import math
from pathlib import Path

import optuna
import pytest
import torch

from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.arch.zoo import make_spec
from scalelab.cost import Cost, cost
from scalelab.errors import SearchError
from scalelab.search import build, get_kind, kind_names, load_study_file
from scalelab.search.config import default_study_name
from scalelab.search.kinds import Planned
from scalelab.search.kinds.enumerated import dedupe
from scalelab.search.kinds.grid import GridSettings, axis, candidates
from scalelab.search.record import Point, TrialCost
from scalelab.search.space import CHANNEL_MULTIPLIERS, suggest_spec
from scalelab.search.targets import Target, parse_target, reward

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
    t = parse_target("12ms", "--target")
    assert (t.amount, t.unit, t.multiple, str(t)) == (12.0, "ms", None, "12ms")
    assert parse_target("2x", "--target").unit == ""


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
        assert config.kind in kind_names() and options.study
    assert set(kind_names()) == {"baseline", "grid", "family", "sweep", "compare"}


def test_flags_override_the_file_key_by_key():
    data = load_study_file(STUDIES / "smoke_grid.toml")
    config, options = build(data, {"train": {"epochs": 3}, "workers": 2, "search": {"target": "4x"}})
    assert config.train.epochs == 3 and config.train.max_images == data["train"]["max_images"]
    assert options.workers == 2 and isinstance(config.search.target, Target)
    assert str(config.search.target) == "4x" and config.search.target.multiple == 4.0
    assert config.search.alpha == tuple(data["search"]["alpha"])
    assert config.base.resolution_px == data["base"]["resolution_px"] == 16


@pytest.mark.parametrize("data, message", [
    ({"kind": "grids"}, "study kind must be one of"),
    ({"kind": "grid", "search": {"targte": "2x"}}, "[search]: unknown setting(s) targte"),
    ({"kind": "grid", "train": {"epoch": 1}}, "[train]: unknown setting(s) epoch"),
    ({"kind": "grid", "model": {"name": "baseline_convnet"}}, "unknown setting(s) model"),  # [model] is now [base]
    ({"kind": "grid", "base": {"resolution": 16}}, "[base]: unknown setting(s) resolution"),  # now resolution_px
    ({"kind": "grid", "search": {"target": "2y"}}, "cannot read settings: [search] target '2y'"),
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
    assert "settings: " in str(info.value)  # names the source (build's default: "settings")


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


def _measure(flops):
    """A fake ``measure`` for :func:`candidates`: the cost whose FLOPs ``flops(spec)`` gives."""
    return lambda spec: Cost(params=1, flops=flops(spec), resolution=spec.resolution)


def test_grid_candidates_filter_on_measured_flops_and_dedupe():
    base = make_spec("baseline_convnet", num_classes=10, width=0.25, resolution=16)
    fake_flops = {21: 180, 22: 196, 23: 300}  # by resolution in px, unlike the prediction gamma^2
    settings = GridSettings(target=parse_target("2x", "target"), alpha=(1.0, 1.0), beta=(1.0, 1.0),
                            gamma=(1.3, 1.45), step=0.05, tolerance=0.2, measured_tolerance=0.05)
    found = candidates(base, 100, 2.0, settings, measure=_measure(lambda s: fake_flops[s.resolution]))
    got = [(c.gamma, c.status, c.measured) for c in found]
    # 16 px x gamma: 1.3 -> 21 px, 1.35 and 1.4 -> 22 px (one network), 1.45 -> 23 px
    assert got == [(1.3, "off-target", 1.8), (1.35, "train", 1.96), (1.4, "duplicate", 1.96),
                   (1.45, "off-target", 3.0)]
    assert all(abs(c.predicted - c.gamma**2) < 1e-9 for c in found)


def test_grid_settings_take_flops_targets_only():
    with pytest.raises(SearchError, match="the grid's target is FLOPs"):
        GridSettings(target=parse_target("5ms", "target"))


def test_grid_without_a_point_on_target_is_an_error():
    base = make_spec("baseline_convnet", num_classes=10, width=0.25, resolution=16)
    with pytest.raises(SearchError, match="no grid point has alpha\\*beta\\^2\\*gamma\\^2 within 5% of 50"):
        candidates(base, 100, 50.0, GridSettings(), measure=_measure(lambda s: 100))
    with pytest.raises(SearchError, match="none measures within 10% of 2x"):
        candidates(base, 100, 2.0, GridSettings(), measure=_measure(lambda s: 100))


def test_grid_plan_keeps_k_and_every_candidate_and_queues_alpha_beta_gamma(tiny_settings):
    config, _ = build({"kind": "grid", "base": tiny_settings["base"],
                       "search": {"target": "2x", "alpha": [1.0, 1.0], "beta": [1.0, 1.5], "gamma": [1.0, 1.5],
                                  "measured_tolerance": 0.15}})
    kind = get_kind("grid")
    plan = kind.plan(config, 10, torch.device("cpu"))
    assert plan.facts["multiple"] == 2.0 and plan.base_flops == cost(plan.base).flops
    rows = plan.facts["candidates"]
    assert len(plan.networks) == sum(r["status"] == "train" for r in rows) == 4
    assert sum(r["status"] == "off-target" for r in rows) == 1
    for n in plan.networks:
        p = n.point
        assert p.dimension == "compound" and p.multiple == 2.0 and p.phi == 1.0
        assert tuple(p.scale) == (p.alpha, p.beta, p.gamma)
        assert p.predicted_ratio == pytest.approx(p.alpha * p.beta**2 * p.gamma**2)
        assert p.measured_ratio == pytest.approx(n.cost.flops / plan.base_flops)
        assert abs(p.measured_ratio - 2.0) <= 0.15 * 2.0
    assert kind.queue(config, plan) == [{"alpha": n.point.alpha, "beta": n.point.beta, "gamma": n.point.gamma}
                                        for n in plan.networks]
    assert type(plan).from_dict(plan.to_dict()) == plan  # stored with the study, read back whole


def test_sweep_points_match_flops_multiples():
    config, _ = build({"kind": "sweep", "base": {"name": "baseline_convnet", "width": 0.25},
                       "search": {"multiples": [1.0, 4.0]}})
    kind = get_kind("sweep")
    plan = kind.plan(config, 10, torch.device("cpu"))
    points = plan.networks
    by_dim = {p.point.dimension: p for p in points}
    assert set(by_dim) == {None, "width", "depth", "resolution", "compound"} and len(points) == 5
    assert by_dim["width"].point.scale.width == 2.0 and by_dim["depth"].point.scale.depth == 4.0
    assert by_dim["resolution"].spec.resolution == 64
    c = by_dim["compound"].point
    assert c.scale.depth * c.scale.width ** 2 * c.scale.resolution ** 2 == pytest.approx(4.0)
    assert c.predicted_ratio == pytest.approx(4.0) and (c.alpha, c.beta, c.gamma) == (1.2, 1.1, 1.15)
    assert all(p.point.aliases == () for p in points)
    assert by_dim[None].point.multiple == 1.0 and by_dim[None].point.measured_ratio == 1.0
    assert all(p.point.multiple == 4.0 for dim, p in by_dim.items() if dim is not None)
    assert all(p.point.measured_ratio == pytest.approx(p.cost.flops / plan.base_flops) for p in points)
    queued = kind.queue(config, plan)
    assert {(q["dimension"], q["multiple"]) for q in queued} == {
        ("base", 1.0), ("width", 4.0), ("depth", 4.0), ("resolution", 4.0), ("compound", 4.0)}


def test_family_phis_from_flops_targets():
    config, _ = build({"kind": "family", "base": {"name": "baseline_convnet", "width": 0.25, "resolution_px": 16}})
    base_flops = cost(config.base.resolve(10)).flops
    config, _ = build({"kind": "family", "base": {"name": "baseline_convnet", "width": 0.25, "resolution_px": 16},
                       "search": {"targets": ["4x", str(8 * base_flops)]}})
    assert [str(t) for t in config.search.targets] == ["4x", str(8 * base_flops)]
    growth = 1.2 * 1.1**2 * 1.15**2
    plan = get_kind("family").plan(config, 10, torch.device("cpu"))
    assert plan.base_flops == base_flops
    assert [p.point.phi for p in plan.networks] == pytest.approx([math.log(4) / math.log(growth),
                                                                  math.log(8) / math.log(growth)])
    assert [p.point.predicted_ratio for p in plan.networks] == pytest.approx([4.0, 8.0])
    assert get_kind("family").queue(config, plan) == [{"phi": p.point.phi} for p in plan.networks]


def test_dedupe_records_aliases():
    base = make_spec("baseline_convnet", num_classes=10)
    renamed = NetworkSpec.from_dict({**base.to_dict(), "name": "same-network"})
    planned = [Planned(spec, Point(alpha=a), TrialCost(1, 1)) for spec, a in
               ((base, 1.0), (renamed, 1.01), (make_spec("resnet18_32"), 1.0))]
    points = dedupe(planned)
    assert len(points) == 2 and points[0].point.aliases[0].alpha == 1.01 and points[0].spec == base
    assert points[1].point.aliases == ()
