"""Parameters, FLOPs (multiply-adds), latency and training memory."""

import pytest
import torch

from scalelab.arch.build import build
from scalelab.arch.scaling import compound_family
from scalelab.arch.zoo import get_preset
from scalelab.cost import cost, count_flops, measure_latency, training_memory


def test_seed_table_2_figures_with_10_classes():
    b0 = cost(get_preset("efficientnet_b0", 10))
    assert round(b0.params / 1e6, 2) == 4.02
    assert b0.flops == pytest.approx(398.1e6, rel=0.005)  # seed: 398.1 MMac
    r152 = cost(get_preset("resnet152", 10))
    assert round(r152.params / 1e6, 2) == 58.16
    assert r152.flops == pytest.approx(11.58e9, rel=0.01)  # seed: 11.58 GMac
    base = cost(get_preset("baseline_convnet", 10))
    assert base.params == pytest.approx(1.46e6, rel=0.01)  # seed: 1.46M, 39.97 MMac
    assert base.flops == pytest.approx(39.97e6, rel=0.03)


def test_convolution_flops_match_hand_count():
    # Baseline ConvNet at 32 px: 3x3 convs 3->64 @32x32, 64->128 @16x16, 128->256 @8x8.
    convs = 9 * (3 * 64 * 32 * 32 + 64 * 128 * 16 * 16 + 128 * 256 * 8 * 8)
    linears = 4096 * 256 + 256 * 128 + 128 * 10
    flops, _ = count_flops(build(get_preset("baseline_convnet", 10)), 32)
    batch_norm_and_pool = 2 * (64 * 32 * 32 + 128 * 16 * 16 + 256 * 8 * 8) + 256 * 8 * 8
    assert flops == convs + linears + batch_norm_and_pool


@pytest.mark.parametrize("name", ["efficientnet_b0_32", "efficientnet_v2_s_32", "resnet18_32",
                                  "resnet50_32", "baseline_convnet"])
def test_every_operator_is_counted_or_declared_free(name):
    # One preset per operator family: which operators appear does not depend on the size.
    assert cost(get_preset(name, 10)).uncounted_ops == ()


def test_compound_family_flops_grow_as_predicted():
    """Measured/predicted FLOPs for alpha=1.2, beta=1.1, gamma=1.15 on B0 stays in [1.0, 1.4].

    Layer counts are rounded up (a one-layer stage gets two at d = 1.2), so the measured growth
    overshoots (alpha * beta^2 * gamma^2)^phi, most at small phi; it never undershoots.
    """
    family = compound_family(get_preset("efficientnet_b0"), 1.2, 1.1, 1.15, [0, 1, 2, 3])
    flops = [cost(spec).flops for _, _, spec in family]
    ratios = [f / flops[0] / scale.flops_multiplier for f, (_, scale, _) in zip(flops, family)]
    print("measured / predicted FLOPs ratio at phi 0..3:", [round(r, 3) for r in ratios])
    assert ratios[0] == 1.0
    assert all(1.0 <= r <= 1.4 for r in ratios)
    assert flops == sorted(flops)


def test_latency_and_memory_are_measured():
    spec = get_preset("baseline_convnet", 10)
    model = build(spec)
    lat = measure_latency(model, 32, 4, warmup=1, repeats=3, min_seconds=0.0)
    assert lat.median_ms > 0 and lat.images_per_s == pytest.approx(4 / (lat.median_ms / 1e3))
    assert lat.q1_ms <= lat.median_ms <= lat.q3_ms
    assert lat.repeats == 3  # no time minimum: exactly `repeats` runs, however busy the machine
    # A time minimum the runs can never reach stops at max_repeats, never before and never after.
    assert measure_latency(model, 32, 4, warmup=1, repeats=3, max_repeats=5, min_seconds=1e9).repeats == 5
    small, large = (training_memory(model, 32, b) for b in (8, 32))
    params_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert small > 4 * params_bytes  # weights, grads and two Adam moments at least
    assert large > small  # saved activations grow with the batch
    assert model.training and all(p.grad is None for p in model.parameters())


class _Clock:
    """A perf_counter whose every timed run takes ``step`` seconds, whatever the machine is doing."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.calls = 0.0, step, 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:  # measure_latency reads the clock before and after each run
            self.now += self.step
        return self.now


@pytest.mark.parametrize(("step", "min_seconds", "expected"), [
    (1 / 64, 0.5, 32),    # a fast model: timed until half a second is spent, more runs than `repeats`
    (1 / 4, 0.5, 10),     # a slow one: `repeats` runs already exceed the time minimum
    (1 / 1024, 60, 1000),  # the time minimum is out of reach: max_repeats ends it
])
def test_latency_runs_until_both_minimums_are_met(monkeypatch, step, min_seconds, expected):
    import types

    import scalelab.cost

    model = torch.nn.Identity()
    monkeypatch.setattr(scalelab.cost, "time", types.SimpleNamespace(perf_counter=_Clock(step)))
    lat = measure_latency(model, 8, 1, warmup=2, repeats=10, min_seconds=min_seconds)
    assert lat.repeats == expected
    assert lat.median_ms == pytest.approx(step * 1e3)
    assert lat.q1_ms == lat.q3_ms == pytest.approx(step * 1e3)


def test_flop_count_leaves_model_mode_alone():
    model = build(get_preset("efficientnet_b0_32", 10)).train()
    count_flops(model, 32)
    assert model.training
    assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()


@pytest.mark.parametrize("name", ["baseline_convnet", "resnet18_32", "resnet50_32", "efficientnet_b0_32",
                                  "efficientnet_v2_s_32", "efficientnet_b0_fused_32", "resnet18",
                                  "frontier_convnet"])
def test_footprint_counts_parameters_exactly_without_building(name):
    from scalelab.cost import footprint

    spec = get_preset(name, 10)
    assert footprint(spec).params == sum(p.numel() for p in build(spec).parameters())


def test_a_network_too_large_for_memory_is_refused_before_it_is_built(monkeypatch):
    import dataclasses

    import scalelab.cost
    from scalelab.cost import check_fits, footprint
    from scalelab.errors import SpecError

    base = get_preset("baseline_convnet", 10)
    deep = dataclasses.replace(base, stages=(dataclasses.replace(base.stages[0], layers=10**9), *base.stages[1:]))
    size = footprint(deep)  # a billion layers: counted at once, never built
    assert size.params > 10**13 and size.bytes(1) > 4 * size.params
    assert footprint(base).bytes(64, training=True) > footprint(base).bytes(1, training=True)
    with pytest.raises(SpecError, match=r"too large for this machine: [0-9,]+ parameters, about .* GiB") as info:
        cost(deep)
    assert "\n" not in str(info.value)
    need = footprint(base).bytes(32, training=True)
    monkeypatch.setattr(scalelab.cost, "available_memory", lambda device="cpu": need - 1)
    with pytest.raises(SpecError, match="for training at batch 32"):
        check_fits(base, batch_size=32, training=True)
    monkeypatch.setattr(scalelab.cost, "available_memory", lambda device="cpu": need)
    assert check_fits(base, batch_size=32, training=True) == footprint(base)


def test_available_memory_is_positive_on_this_machine():
    from scalelab.cost import available_memory

    free = available_memory("cpu")
    assert free is None or free > 0


def test_conv_pool_pools_between_its_convolution_and_batch_norm():
    """A ``conv_pool`` stage convolves at its input resolution, then max-pools, then BN and activation: the
    multiply-adds of its convolution one resolution up from a ``conv`` stage's, the rest unchanged."""
    import dataclasses

    from scalelab.arch.spec import StageSpec

    base = get_preset("baseline_convnet", 10)  # its first stage: max-pool 32 -> 16 px, conv 64 -> 128
    pooled = dataclasses.replace(base, stages=(StageSpec("conv_pool", 1, 128, stride=2), *base.stages[1:]))
    layer = build(pooled).stages[0][0].eval()
    conv, bn = layer[0], layer[2]
    x = torch.randn(2, 64, 8, 8)
    expected = torch.relu(bn(torch.nn.functional.max_pool2d(conv(x), 2)))
    assert torch.allclose(layer(x), expected) and layer(x).shape[-1] == 4
    extra = 64 * 128 * 9 * (32 * 32 - 16 * 16)  # the convolution at 32 px instead of 16
    assert count_flops(build(pooled), 32)[0] - count_flops(build(base), 32)[0] == extra
    assert pooled.table()[1]["operator"] == "Conv3x3+MaxPool" and pooled.table()[1]["resolution"] == "32x32"
