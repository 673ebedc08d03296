"""Named recipes and the techniques they switch on (whitening, flip TTA, EMA, the linear schedule),
on tiny data: one epoch, tiny models."""

import dataclasses
import json
import sys

import pytest
from conftest import corner_squares
import torch
from torch import nn

from scalelab.arch.build import build
from scalelab.arch.scaling import Scale, apply
from scalelab.arch.zoo import get_preset
from scalelab.cli import main
from scalelab.data import split_validation
from scalelab.recipes import RECIPES
from scalelab.search import build as build_study
from scalelab.train import (TrainConfig, TrainConfigError, _BatchMaker, _Lookahead, _lr_factor, _optimizer,
                            _translated, evaluate, identity_init, train, whiten_first_conv)

pytestmark = pytest.mark.xdist_group("recipes")


@pytest.fixture(scope="module")
def splits():
    return split_validation(corner_squares(32), 0.25, seed=0)


@pytest.fixture(scope="module")
def spec():
    return dataclasses.replace(apply(get_preset("fast_convnet", 3), Scale(1.0, 0.5, 1.0)), resolution=16)


def test_recipe_fills_only_the_fields_not_given():
    fast = RECIPES["fast"].settings
    c = TrainConfig(recipe="fast", epochs=2, whiten=False, batch_size=128)
    assert c.optimizer == fast["optimizer"] == "sgd" and c.tta is True and c.schedule == "linear"
    assert c.whiten is False  # given equal to the default: still given
    assert c.batch_size == 128 and c.epochs == 2
    # A resolved config is stable: replace and a round trip through a dict change nothing.
    assert dataclasses.replace(c, seed=4).whiten is False
    assert TrainConfig(**dataclasses.asdict(c)) == c


def test_every_recipe_is_valid_and_names_a_preset():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name, recipe in RECIPES.items():
        assert set(recipe.settings) <= fields - {"epochs", "max_images", "max_seconds", "recipe"}
        TrainConfig(recipe=name)
        get_preset(recipe.preset, 10)


@pytest.mark.parametrize("kwargs, match", [
    (dict(recipe="fastest"), "unknown recipe 'fastest'"), (dict(recipe=3), "unknown recipe 3"),
    (dict(schedule="triangle"), "unknown schedule"), (dict(tta=1), "tta must be true or false"),
    (dict(whiten="yes"), "whiten must be true or false"), (dict(ema=1.0), r"ema must be in \[0, 1\)"),
    (dict(ema="0.9"), "ema must be a number"), (dict(crop_padding=17), "crop_padding must be from 0 to 16"),
    (dict(crop_padding=1.5), "crop_padding must be an integer"),
    (dict(tta=True, tta_shift=5), "tta_shift must be from 0 to 4"), (dict(tta_shift=1), "set tta too"),
    (dict(lookahead=1), "lookahead must be true or false"),
    (dict(identity_init="no"), "identity_init must be true or false"),
    (dict(alternate_flip=True, augment="affine"), "alternate_flip replaces the random flip of augment=\"crop\""),
    (dict(alternate_flip="on"), "alternate_flip must be true or false"),
])
def test_bad_new_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(TrainConfigError, match=match) as info:
        TrainConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_study_file_train_table_takes_a_recipe():
    config, _ = build_study({"kind": "sweep", "search": {"multiples": [1, 2]},
                             "train": {"recipe": "fast", "epochs": 2, "label_smoothing": 0.0}})
    assert config.train.optimizer == "sgd" and config.train.whiten and config.train.epochs == 2
    assert config.train.label_smoothing == 0.0


def test_linear_schedule_is_a_triangle():
    c = TrainConfig(schedule="linear", warmup=0.2)
    assert _lr_factor(0.2, c) == pytest.approx(1.0)
    assert _lr_factor(0.6, c) == pytest.approx(0.5)
    assert _lr_factor(1.0, c) == pytest.approx(0.0)
    assert _lr_factor(0.1, c) == pytest.approx(0.5, abs=0.01)


def test_whitening_decorrelates_patches_and_is_frozen(spec, splits):
    torch.manual_seed(0)
    model = build(spec)
    x = torch.randn(64, 3, 16, 16) @ torch.ones(16, 16) / 4 + 0.1 * torch.randn(64, 3, 16, 16)
    conv = whiten_first_conv(model, x)
    assert not conv.weight.requires_grad
    out = nn.functional.conv2d(x, conv.weight)  # no padding: exactly the patches it was fitted on
    n = min(conv.out_channels // 2, 27)
    feats = out[:, 0:2 * n:2].permute(1, 0, 2, 3).reshape(n, -1)
    cov = torch.cov(feats)
    # Unit variance where the data has variance well above eps; decorrelated everywhere.
    assert torch.allclose(cov.diagonal()[:3], torch.ones(3), atol=0.05)
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 1e-3
    assert torch.equal(out[:, 1:2 * n:2], -out[:, 0:2 * n:2])


def test_training_with_whitening_never_updates_the_first_layer(spec, splits):
    model = build(spec)
    conv = whiten_first_conv(model, torch.randn(32, 3, 16, 16))
    optimizer = _optimizer(model, TrainConfig(recipe="fast"))
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(conv.weight) not in trained and len(trained) == sum(p.requires_grad for p in model.parameters())
    result = train(spec, splits, TrainConfig(recipe="fast", epochs=1, batch_size=16, lr=0.05),
                   progress=False)
    assert result.config["whiten"] and result.curve


class _LeftMinusRight(nn.Module):
    """Two logits: the left half's mean brightness and the right half's (mirror-antisymmetric)."""

    def forward(self, x):
        w = x.shape[-1] // 2
        left, right = x[..., :w].mean((1, 2, 3)), x[..., w:].mean((1, 2, 3))
        return torch.stack([left - right, right - left], 1)


def test_flip_tta_averages_an_image_with_its_mirror():
    x = torch.zeros(8, 3, 8, 8, dtype=torch.uint8)
    y = torch.tensor([0, 1] * 4)
    x[y == 0, :, :, :4] = 200  # class 0: bright left half
    x[y == 1, :, :, 4:] = 200
    batch = _BatchMaker(8, TrainConfig(), torch.Generator().manual_seed(0), False)
    assert evaluate(_LeftMinusRight(), x, y, batch) == 1.0
    # The mirror's logits cancel the image's exactly: every image ties, argmax picks class 0.
    assert evaluate(_LeftMinusRight(), x, y, batch, tta=True) == 0.5


def test_shifted_tta_views_move_the_image_and_reflect_its_edge():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    down_right, up_left = _translated(x, 1, +1), _translated(x, 1, -1)
    assert torch.equal(down_right[..., 1:, 1:], x[..., :3, :3]) and torch.equal(up_left[..., :3, :3], x[..., 1:, 1:])
    assert torch.equal(down_right[..., 0, 1:], x[..., 1, :3])  # the row above the image, reflected


class _CornerBrightness(nn.Module):
    """Two logits from the brightness of the top-left pixel: class 0 when it is dark."""

    def forward(self, x):
        v = x[:, 0, 0, 0]
        return torch.stack([-v, v], 1)


def test_shifted_tta_sees_the_translated_views():
    # Bright pixels at (1, 1) and (1, 6); the model reads the top-left pixel. The image and its mirror
    # have a dark corner (class 0); each of the four shifted views brings a bright pixel there (moved
    # in, or reflected in at the edge). At half weight each they tie the two dark views in count and
    # win by brightness (255 is further above CIFAR's mean than 0 is below it).
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    x[:, :, 1, 1] = x[:, :, 1, 6] = 255
    y = torch.tensor([1, 1])
    batch = _BatchMaker(8, TrainConfig(), torch.Generator().manual_seed(0), False)
    assert evaluate(_CornerBrightness(), x, y, batch, tta=True) == 0.0
    assert evaluate(_CornerBrightness(), x, y, batch, tta=True, shift=1) == 1.0


def test_identity_init_makes_a_conv_pass_its_inputs_through():
    convs = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1))
    first, narrowing = convs[0].weight.clone(), convs[2].weight.clone()
    identity_init(convs)
    x = torch.randn(2, 4, 5, 5)
    out = nn.functional.conv2d(x, convs[1].weight)
    assert torch.equal(out[:, :4], x[:, :, 1:-1, 1:-1])  # the first in_channels filters: the identity
    assert torch.equal(convs[0].weight, first)  # the first layer (the image's) is left alone
    assert torch.equal(convs[2].weight, narrowing)  # fewer outputs than inputs: no identity to keep


def test_lookahead_pulls_the_weights_back_to_a_slow_average():
    model = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(model.weight)
    slow = _Lookahead(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    slow.sync(frac=0.0)  # at the start nothing of the slow weights is kept: the model stays where it went
    assert torch.equal(model.weight, torch.ones(1, 2))
    with torch.no_grad():
        model.weight.fill_(2.0)
    slow.sync(frac=1.0)  # at the end 0.95^5 of the slow weights (1.0) is kept
    assert torch.allclose(model.weight, torch.full((1, 2), 0.95**5 + 2 * (1 - 0.95**5)))
    for _ in range(4):
        slow.step(frac=1.0)
    with torch.no_grad():
        model.weight.fill_(5.0)
    slow.step(frac=1.0)  # the fifth step syncs
    assert model.weight[0, 0] < 5.0


def test_lookahead_and_identity_init_train_and_learn(spec, splits):
    result = train(spec, splits, TrainConfig(recipe="fast", epochs=1, batch_size=16, lr=0.1, lookahead=True,
                                             identity_init=True, tta_shift=1), evaluate_test=True, progress=False)
    assert result.test_acc > 0.6  # chance: 1/3


def test_alternate_flip_shows_every_image_both_ways_every_two_epochs(spec, splits, monkeypatch):
    import scalelab.train

    seen: list[dict[bytes, bool]] = []
    plain = scalelab.train.random_crop_flip

    def spy(x, generator, *, padding, flips):
        if not seen or len(seen[-1]) == epoch_images:
            seen.append({})
        seen[-1].update({img.numpy().tobytes(): bool(f) for img, f in zip(x, flips)})
        return plain(x, generator, padding=padding, flips=flips)

    epoch_images = (len(splits.train[1]) // 16) * 16
    monkeypatch.setattr(scalelab.train, "random_crop_flip", spy)
    train(spec, splits, TrainConfig(recipe="fast", epochs=3, batch_size=16, whiten=False, alternate_flip=True),
          progress=False)
    assert len(seen) == 3 and all(len(epoch) == epoch_images for epoch in seen)
    both = seen[0].keys() & seen[1].keys()
    assert len(both) > epoch_images // 2
    assert all(seen[0][k] != seen[1][k] for k in both)  # each image mirrored in exactly one of two epochs
    assert all(seen[0][k] == seen[2][k] for k in seen[0].keys() & seen[2].keys())
    assert 0.25 < sum(seen[0].values()) / epoch_images < 0.75


def test_crop_flip_mirrors_exactly_the_images_asked_for():
    from scalelab.data.augment import random_crop_flip

    x = torch.randn(4, 3, 5, 5)
    flips = torch.tensor([True, False, False, True])
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=0, flips=flips)
    assert torch.equal(out[flips], x[flips].flip(3)) and torch.equal(out[~flips], x[~flips])


def test_ema_evaluates_an_average_that_trails_the_weights(spec, splits):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=3e-3, augment="crop")
    plain = train(spec, splits, cfg, progress=False)
    averaged = train(spec, splits, dataclasses.replace(cfg, ema=0.9), progress=False)
    # Same seed, same training: only the evaluated weights differ.
    assert [r.train_loss for r in plain.curve] == [r.train_loss for r in averaged.curve]
    assert averaged.val_acc > 1 / 3


def test_fast_recipe_learns_in_one_epoch(spec, splits):
    result = train(spec, splits, TrainConfig(recipe="fast", epochs=1, batch_size=16, lr=0.1),
                   evaluate_test=True, progress=False)
    assert result.test_acc > 0.6  # chance: 1/3


def test_cli_recipe_with_an_override(capsys, monkeypatch, tmp_path):
    out = tmp_path / "r.json"
    monkeypatch.setattr(sys, "argv", ["scalelab", "train", "fast_convnet", "--width", "0.25", "--recipe", "fast",
                                      "--max-images", "256", "--batch-size", "64", "--no-whiten",
                                      "--no-test", "--json", "--out", str(out)])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    assert (info.value.code or 0) == 0
    config = json.loads(out.read_text())["config"]
    assert config["recipe"] == "fast" and config["optimizer"] == "sgd" and config["tta"] is True
    assert config["whiten"] is False and config["batch_size"] == 64


def test_bf16_autocast_where_it_is_emulated_is_warned_of_once(spec, splits, monkeypatch, capsys):
    import scalelab.train as train_module

    monkeypatch.setattr(train_module, "has_fast_bf16", lambda device: False)
    train_module._warn_if_slow_bf16.cache_clear()
    config = TrainConfig(epochs=1, max_images=32, batch_size=16, amp=True)
    for _ in range(2):
        train(spec, splits, config, progress=False)
    assert capsys.readouterr().err.count("without native bfloat16") == 1
    train_module._warn_if_slow_bf16.cache_clear()


def test_tta_only_at_the_end_scores_earlier_epochs_once_and_trains_the_same(spec, splits, monkeypatch):
    import scalelab.train

    views: list[tuple[bool, int]] = []
    plain = scalelab.train.evaluate

    def spy(*args, tta=False, shift=0):
        views.append((tta, shift))
        return plain(*args, tta=tta, shift=shift)

    monkeypatch.setattr(scalelab.train, "evaluate", spy)
    config = dict(recipe="fast", epochs=3, batch_size=16, tta_shift=1)
    every = train(spec, splits, TrainConfig(**config), progress=False)
    assert views == [(True, 1)] * 3
    views.clear()
    at_end = train(spec, splits, TrainConfig(**config, tta_each_epoch=False), evaluate_test=True, progress=False)
    assert views == [(False, 0), (False, 0), (True, 1), (True, 1)]  # the last epoch's validation and the test
    assert [r.train_loss for r in at_end.curve] == [r.train_loss for r in every.curve]
    assert at_end.val_acc == every.val_acc
