"""The short-trial trainer on tiny, learnable data."""

import dataclasses
import math

import pytest
from conftest import corner_squares

from scalelab.arch.scaling import Scale, apply
from scalelab.arch.zoo import get_preset
from scalelab.data import split_validation
from scalelab.errors import ScalelabError, TrainingError
from scalelab.train import TrainConfig, train

pytestmark = pytest.mark.xdist_group("train")  # its module-scoped fixtures are built once, in one process


@pytest.fixture(scope="module")
def splits():
    return split_validation(corner_squares(64), 0.25, seed=0)


@pytest.fixture(scope="module")
def tiny_spec():
    spec = dataclasses.replace(get_preset("baseline_convnet", 3), resolution=16)
    return apply(spec, Scale(1.0, 0.125, 1.0))


FAST = TrainConfig(epochs=3, batch_size=16, augment="crop", lr=3e-3)


def test_learns_and_records_a_curve(splits, tiny_spec):
    result = train(tiny_spec, splits, FAST, evaluate_test=True, progress=False)
    assert [round(r.epoch) for r in result.curve] == [1, 2, 3]
    assert result.val_acc == result.curve[-1].val_acc
    assert result.val_acc > 0.6 and result.test_acc > 0.6  # chance is 1/3
    record = result.to_dict()
    assert record["images_per_s"] > 0 and len(record["curve"]) == 3
    assert record["splits"]["val_acc"].startswith("val")


def test_same_seed_same_result(splits, tiny_spec):
    cfg = dataclasses.replace(FAST, epochs=1, augment="affine")
    a, b = (train(tiny_spec, splits, cfg, progress=False) for _ in range(2))
    assert [r.train_loss for r in a.curve] == [r.train_loss for r in b.curve]
    c = train(tiny_spec, splits, dataclasses.replace(cfg, seed=1), progress=False)
    assert c.curve[0].train_loss != a.curve[0].train_loss


def test_image_budget_stops_training(splits, tiny_spec):
    result = train(tiny_spec, splits, TrainConfig(epochs=math.inf, max_images=80, batch_size=16),
                   progress=False)
    assert result.images_seen == 80 and len(result.curve) == 1


def test_time_budget_stops_training(splits, tiny_spec):
    result = train(tiny_spec, splits, TrainConfig(epochs=math.inf, max_seconds=0.5, batch_size=16),
                   progress=False)
    assert 0.5 <= result.train_s < 5 and result.curve


def test_callback_sees_every_epoch_and_can_stop(splits, tiny_spec):
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(record):
        seen.append(record.val_acc)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        train(tiny_spec, splits, FAST, on_epoch=on_epoch, progress=False)
    assert len(seen) == 2


def test_divergence_raises_a_specific_error(splits, tiny_spec):
    cfg = TrainConfig(epochs=1, batch_size=16, optimizer="sgd", lr=1e30, warmup=0)
    with pytest.raises(TrainingError, match="NaN or infinite"):
        train(tiny_spec, splits, cfg, progress=False)


def test_resolution_scaling_resizes_batches(splits, tiny_spec):
    bigger = apply(tiny_spec, Scale(1.0, 1.0, 1.5))
    assert bigger.resolution == 24
    result = train(bigger, splits, dataclasses.replace(FAST, epochs=1), progress=False)
    assert result.resolution == 24 and 0 <= result.val_acc <= 1


def test_class_count_mismatch_is_a_clear_error(splits, tiny_spec):
    with pytest.raises(ScalelabError, match="--classes 3"):
        train(dataclasses.replace(tiny_spec, num_classes=10), splits, FAST, progress=False)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "must be positive"), (dict(optimizer="rmsprop"), "unknown optimizer"),
    (dict(augment="mixup"), "unknown augmentation"), (dict(batch_size=0), "batch size"),
    # non-finite and meaningless values, refused before any work (issue 15)
    (dict(epochs=NAN), "epochs must be positive, got nan"), (dict(epochs=-1.0), "epochs must be positive"),
    (dict(epochs=INF), "no finite training budget"),
    (dict(epochs=INF, max_seconds=INF), "max_seconds must be a finite"),
    (dict(max_seconds=NAN), "max_seconds must be positive, got nan"),
    (dict(max_images=0), "max_images must be positive"),
    (dict(lr=NAN), "lr must be a finite number, got nan"), (dict(lr=-1.0), "lr must be positive, got -1.0"),
    (dict(lr=0.0), "lr must be positive"), (dict(lr=INF), "lr must be a finite number"),
    (dict(seed=-1), r"seed must be an integer from 0 to 2\*\*63 - 1, got -1"), (dict(seed=2**64), "seed must be"),
    (dict(weight_decay=-1e-4), "weight_decay must be >= 0"), (dict(weight_decay=NAN), "weight_decay must be a finite"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\)"), (dict(warmup=1.0), "warmup must be in"),
    (dict(label_smoothing=-0.1), "label_smoothing must be in"), (dict(dropout=1.5), "dropout must be in"),
    (dict(drop_path=NAN), "drop_path must be a finite"), (dict(rotation=-5.0), "rotation must be in"),
    (dict(shift=2.0), "shift must be in"), (dict(zoom=NAN), "zoom must be a finite"),
    (dict(eval_batch_size=0), "eval batch size must be at least 1"), (dict(schedule="step"), "unknown schedule"),
    # wrong types, as a study file's [train] table can give them
    (dict(lr="1e-3"), r"lr must be a number, got '1e-3' \(str\)"), (dict(epochs="3"), "epochs must be a number"),
    (dict(batch_size=1.5), r"batch_size must be an integer, got 1.5 \(float\)"),
    (dict(max_images=True), r"max_images must be an integer, got True \(bool\)"),
    (dict(seed=0.5), "seed must be an integer"), (dict(weight_decay=None), "weight_decay must be a number"),
    (dict(nesterov="yes"), "nesterov must be true or false"), (dict(amp=1), "amp must be true, false or unset"),
    (dict(optimizer=["adam"]), "unknown optimizer"), (dict(augment=None), "unknown augmentation"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ScalelabError, match=match) as info:
        TrainConfig(**kwargs)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs", [
    dict(epochs=INF, max_images=64), dict(epochs=INF, max_seconds=0.5), dict(max_images=10, epochs=None),
    dict(lr=1e30), dict(seed=0), dict(seed=2**63 - 1), dict(weight_decay=0.0), dict(amp=True), dict(epochs=1)])
def test_good_config_is_accepted(kwargs):
    assert TrainConfig(**kwargs).batch_size == 128


def test_efficientnet_block_trains_with_stochastic_depth(splits):
    spec = apply(dataclasses.replace(get_preset("efficientnet_b0_32", 3), resolution=16),
                 Scale(0.34, 0.25, 1.0))
    cfg = dataclasses.replace(FAST, epochs=1, drop_path=0.2, dropout=0.1)
    result = train(spec, splits, cfg, progress=False)
    assert math.isfinite(result.curve[0].train_loss)


class _Pause(Exception):
    pass


def _pause_after(epochs):
    def on_epoch(record):
        if round(record.epoch) == epochs:
            raise _Pause
    return on_epoch


@pytest.mark.parametrize("cfg", [
    dataclasses.replace(FAST, augment="affine", ema=0.9),
    TrainConfig(epochs=3, batch_size=16, recipe="frontier", amp=False),  # lookahead, alternating flips, SGD
], ids=["adam-ema", "sgd-lookahead"])
def test_training_paused_at_a_checkpoint_goes_on_exactly(splits, tiny_spec, tmp_path, cfg):
    straight = train(tiny_spec, splits, cfg, progress=False)
    path = tmp_path / "t.pt"
    with pytest.raises(_Pause):
        train(tiny_spec, splits, cfg, progress=False, checkpoint=path, on_epoch=_pause_after(1))
    resumed = train(tiny_spec, splits, cfg, progress=False, checkpoint=path)
    assert [round(r.epoch) for r in resumed.curve] == [1, 2, 3]
    assert [r.train_loss for r in resumed.curve] == [r.train_loss for r in straight.curve]
    assert [r.val_acc for r in resumed.curve] == [r.val_acc for r in straight.curve]
    assert resumed.images_seen == straight.images_seen


def test_a_checkpoint_of_another_training_is_not_continued(splits, tiny_spec, tmp_path):
    path = tmp_path / "t.pt"
    with pytest.raises(_Pause):
        train(tiny_spec, splits, FAST, progress=False, checkpoint=path, on_epoch=_pause_after(2))
    other = train(tiny_spec, splits, dataclasses.replace(FAST, seed=1), progress=False, checkpoint=path)
    assert [round(r.epoch) for r in other.curve] == [1, 2, 3]  # trained from the start
    assert other.curve[0].train_loss == train(tiny_spec, splits, dataclasses.replace(FAST, seed=1),
                                              progress=False).curve[0].train_loss


def test_a_damaged_checkpoint_is_said_and_training_starts_over(splits, tiny_spec, tmp_path, capsys):
    path = tmp_path / "t.pt"
    path.write_bytes(b"not a checkpoint")
    result = train(tiny_spec, splits, dataclasses.replace(FAST, epochs=1), progress=False, checkpoint=path)
    assert len(result.curve) == 1
    assert "could not be read" in capsys.readouterr().err
    assert path.stat().st_size > 1000  # replaced by this training's own state
