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
from scalelab.train import (TrainConfig, TrainConfigError, _BatchMaker, _lr_factor, _optimizer, evaluate,
                            train, whiten_first_conv)

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
