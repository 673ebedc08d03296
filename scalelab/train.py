"""The short-trial trainer: data held on the device as uint8 tensors, batches cut from a permutation,
augmentation vectorised over the batch (the airbench way), no DataLoader and no per-image Python.

A budget is epochs, images or seconds (whichever runs out first); the learning-rate schedule follows
the fraction of the budget used, so a time-boxed trial still warms up and anneals fully.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalelab import checkpoint as ckpt
from scalelab import optim
from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import check_fits
from scalelab.data import Splits
from scalelab.data.augment import random_affine, random_crop_flip, resize_batch
from scalelab.device import has_fast_bf16
from scalelab.errors import ScalelabError, TrainingError

AUGMENTATIONS = ("affine", "crop", "none")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "linear", "constant")
# Per-channel mean and standard deviation of CIFAR-10's training images, on a 0..1 scale.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class TrainConfigError(ScalelabError, ValueError):
    """A training setting is of the wrong type or out of its range (one line, said before any work)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train one trial. ``epochs``, ``max_images`` and ``max_seconds`` are budgets: training
    stops when the first of them runs out.

    ``augment='affine'`` is the seed report's recipe (random rotation, shift, zoom, plus flip);
    ``'crop'`` is the cheaper pad-and-crop (by ``crop_padding`` pixels) + flip. ``dropout`` and
    ``drop_path`` override the spec's head dropout and stochastic-depth rate when set.

    ``recipe`` names a set of settings in :mod:`scalelab.recipes` (``"fast"``): it fills in every
    field of the recipe not given to the constructor, so ``TrainConfig(recipe="fast", epochs=4,
    whiten=False)`` is the fast recipe with a 4-epoch budget and no whitening layer.
    """

    epochs: float = 10.0
    max_images: int | None = None
    max_seconds: float | None = None
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float | None = None  # default: 1e-3 for Adam, 0.1 x batch/256 for SGD
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    warmup: float = 0.05  # fraction of the budget spent warming the learning rate up linearly
    # After warm-up: "cosine" decay to 0, "linear" decay to 0 (with warm-up: a triangle, one-cycle
    # style), or "constant".
    schedule: str = "cosine"
    label_smoothing: float = 0.0  # cross-entropy against (1 - s) one-hot + s uniform targets
    augment: str = "affine"
    crop_padding: int = 4  # pixels of zero padding for augment="crop" (random translation by up to this)
    rotation: float = 15.0
    shift: float = 0.1
    zoom: float = 0.1
    dropout: float | None = None
    drop_path: float | None = None
    seed: int = 0
    # bfloat16 autocast. None: on for CUDA only. On CPUs with AVX512-BF16 it doubles the speed of dense
    # convolutions but slows depthwise ones (measured: baseline_convnet 2.1x faster, B0 0.75x).
    amp: bool | None = None
    channels_last: bool = True  # NHWC: faster on CUDA and, with oneDNN, on the CPU too (B0: 2x)
    eval_batch_size: int = 512
    # Evaluate on each image and its mirror image and average the logits (flip test-time augmentation;
    # doubles the cost of every evaluation).
    tta: bool = False
    # Frozen patch-whitening first layer: the first convolution's k x k filters are set, before
    # training, to the leading principal directions of the training images' k x k patches (each with
    # its negative, so a ReLU keeps both signs) scaled to unit variance, and are never trained.
    whiten: bool = False
    # Exponential moving average of the weights (and batch-norm statistics) with this decay per step,
    # used for every evaluation; None: off. 0.99 suits a few hundred steps.
    ema: float | None = None
    # Lookahead: every 5 steps the trained ("fast") weights and batch-norm statistics are pulled back to
    # a slow copy moved part of the way towards them; the share kept grows over training (0 at the start,
    # 0.95^5 at the end), so early steps learn freely and late ones are averaged. The slow weights are
    # what is evaluated and kept.
    lookahead: bool = False
    # Start every convolution after the first with its first in_channels filters set to the identity
    # (a Dirac kernel), the rest random: a deep plain ConvNet then starts close to a shallower one.
    identity_init: bool = False
    # With tta: also average the logits of each image (and its mirror image) translated by this many
    # pixels diagonally both ways, at half weight each (reflect-padded): 6 views instead of 2.
    tta_shift: int = 0
    # With tta: apply it to the validation after every epoch too. Off: those validations score each image
    # once (a sixth of the cost with tta_shift) and only the last epoch's validation and the test average
    # the views; the training itself is the same either way.
    tta_each_epoch: bool = True
    # With augment="crop": flip each image in every other epoch instead of at random (half the images,
    # drawn once, in odd epochs, the other half in even ones), so that every two epochs show both
    # mirror images of every image.
    alternate_flip: bool = False
    recipe: str | None = None  # a name in scalelab.recipes.RECIPES (see the class docstring)

    def __post_init__(self) -> None:
        if self.recipe is not None:
            _apply_recipe(self)
        _check_config(self)

    def image_budget(self, n_train: int) -> float:
        """Training images the epoch and image budgets allow (inf when only time limits training). An
        epoch is every full batch of a permutation: the ragged last batch is dropped."""
        epoch = max(1, n_train // self.batch_size) * min(self.batch_size, n_train)
        epochs = math.inf if self.epochs is None else self.epochs
        return min(epochs * epoch, self.max_images or math.inf)

    @property
    def base_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.optimizer == "adam" else 0.1 * self.batch_size / 256


MAX_SEED = 2**63 - 1
_UNIT = "in [0, 1)"


def _number(name: str, value: Any, *, optional: bool = False, integer: bool = False) -> None:
    """``value`` is a real number (an integer for ``integer``), or None when ``optional``; never a bool
    or a string that looks like a number (TOML's ``lr = "1e-3"``)."""
    if value is None and optional:
        return
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "an integer" if integer else "a number"
        raise TrainConfigError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise TrainConfigError(f"{name} must be a finite number, got {value}")


def _apply_recipe(c: TrainConfig) -> None:
    """Fill the fields of ``c.recipe`` that the caller did not give (a frozen dataclass: set through
    object.__setattr__ once, before validation)."""
    from scalelab.recipes import RECIPES  # imports this module

    if not isinstance(c.recipe, str) or c.recipe not in RECIPES:
        raise TrainConfigError(f"unknown recipe {c.recipe!r}; use one of {', '.join(RECIPES)}")
    given = getattr(c, "_given", frozenset())
    for name, value in RECIPES[c.recipe].settings.items():
        if name not in given:
            object.__setattr__(c, name, value)


def _recording_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap TrainConfig's generated __init__ to note which fields the caller gave (a recipe fills only
    the others; ``dataclasses.replace`` gives them all, so a resolved config stays as it is)."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]

    def __init__(self: TrainConfig, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "_given", frozenset(names[:len(args)]) | frozenset(kwargs))
        init(self, *args, **kwargs)

    __init__.__doc__ = init.__doc__
    return __init__


TrainConfig.__init__ = _recording_init(TrainConfig.__init__)  # type: ignore[method-assign]


def _check_config(c: TrainConfig) -> None:
    """Refuse, in one line, settings that are of the wrong type, non-finite, or meaningless."""
    for name in ("epochs", "max_seconds"):
        _number(name, getattr(c, name), optional=True)
    _number("max_images", c.max_images, optional=True, integer=True)
    budgets = dict(epochs=c.epochs, max_images=c.max_images, max_seconds=c.max_seconds)
    for name, value in budgets.items():
        if value is not None and (math.isnan(value) or not value > 0):
            raise TrainConfigError(f"budget {name} must be positive, got {value}")
    if c.max_seconds is not None:
        _finite("max_seconds", c.max_seconds)
    if not any(v is not None and math.isfinite(v) for v in budgets.values()):
        raise TrainConfigError("no finite training budget: give a finite epochs, max_images or max_seconds "
                               f"(got epochs={c.epochs})")
    for name in ("batch_size", "eval_batch_size", "seed", "crop_padding", "tta_shift"):
        _number(name, getattr(c, name), integer=True)
    for name in ("batch_size", "eval_batch_size"):
        if getattr(c, name) < 1:
            raise TrainConfigError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(c, name)}")
    if not 0 <= c.crop_padding <= 16:
        raise TrainConfigError(f"crop_padding must be from 0 to 16 pixels, got {c.crop_padding}")
    if not 0 <= c.tta_shift <= 4:
        raise TrainConfigError(f"tta_shift must be from 0 to 4 pixels, got {c.tta_shift}")
    if c.tta_shift and not c.tta:
        raise TrainConfigError("tta_shift averages shifted views of the flip test-time augmentation: "
                               "set tta too")
    if not 0 <= c.seed <= MAX_SEED:
        raise TrainConfigError(f"seed must be an integer from 0 to 2**63 - 1, got {c.seed}")
    for name, words, allowed in (("optimizer", "optimizer", OPTIMIZERS),
                                 ("augment", "augmentation", AUGMENTATIONS),
                                 ("schedule", "schedule", SCHEDULES)):
        value = getattr(c, name)
        if not isinstance(value, str) or value not in allowed:
            raise TrainConfigError(f"unknown {words} {value!r} ({name}); use one of {', '.join(allowed)}")
    for name in ("nesterov", "channels_last", "tta", "tta_each_epoch", "whiten", "lookahead", "identity_init",
                 "alternate_flip"):
        if not isinstance(getattr(c, name), bool):
            raise TrainConfigError(f"{name} must be true or false, got {getattr(c, name)!r}")
    if c.alternate_flip and c.augment != "crop":
        raise TrainConfigError(f"alternate_flip replaces the random flip of augment=\"crop\", not of "
                               f"{c.augment!r}: set augment to crop or leave alternate_flip off")
    if c.amp is not None and not isinstance(c.amp, bool):
        raise TrainConfigError(f"amp must be true, false or unset, got {c.amp!r}")
    _number("lr", c.lr, optional=True)
    if c.lr is not None:
        _finite("lr", c.lr)
        if not c.lr > 0:
            raise TrainConfigError(f"lr must be positive, got {c.lr}")
    ranges = dict(momentum=(c.momentum, 0, 1, _UNIT), weight_decay=(c.weight_decay, 0, math.inf, ">= 0"),
                  warmup=(c.warmup, 0, 1, _UNIT), label_smoothing=(c.label_smoothing, 0, 1, _UNIT),
                  rotation=(c.rotation, 0, 180, "in [0, 180) degrees"), shift=(c.shift, 0, 1, _UNIT),
                  zoom=(c.zoom, 0, 1, _UNIT), dropout=(c.dropout, 0, 1, _UNIT),
                  drop_path=(c.drop_path, 0, 1, _UNIT), ema=(c.ema, 0, 1, _UNIT))
    for name, (value, lo, hi, words) in ranges.items():
        _number(name, value, optional=name in ("dropout", "drop_path", "ema"))
        if value is None:
            continue
        _finite(name, value)
        if not lo <= value < hi:
            raise TrainConfigError(f"{name} must be {words}, got {value}")


@dataclass
class EpochRecord:
    """One point of the validation curve (``val_acc`` is a fraction of the validation split)."""

    epoch: float
    images_seen: int
    train_loss: float
    train_acc: float
    val_acc: float
    wall_s: float


@dataclass
class TrainResult:
    """What a trial produced; ``to_dict`` is the machine-readable record."""

    model: str
    dataset: str
    device: str
    resolution: int
    curve: list[EpochRecord] = field(default_factory=list)
    val_acc: float = float("nan")
    test_acc: float | None = None
    wall_s: float = 0.0
    train_s: float = 0.0
    images_seen: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """Training throughput, excluding evaluation."""
        return self.images_seen / self.train_s if self.train_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["images_per_s"] = self.images_per_s
        d["splits"] = {"val_acc": "val (held out from train)", "test_acc": "test"}
        return d


EpochCallback = Callable[[EpochRecord], None]


def train(spec: NetworkSpec, splits: Splits, config: TrainConfig = TrainConfig(), *,
          device: torch.device | str = "cpu", on_epoch: EpochCallback | None = None,
          evaluate_test: bool = False, progress: bool = True, checkpoint: str | Path | None = None,
          on_resume: Callable[[list[EpochRecord]], None] | None = None) -> TrainResult:
    """Train ``spec`` on ``splits.train``, validating on ``splits.val`` after every epoch.

    ``on_epoch`` sees each validation point and may raise (an Optuna pruning signal, say) to stop the
    trial. A non-finite loss raises :class:`TrainingError`. The test split is evaluated only when
    ``evaluate_test`` is set, once, at the end. ``checkpoint``: a file the whole training state is saved
    to after every epoch (before ``on_epoch``); when it holds the state of this same training (network,
    recipe, training images), training goes on from there, exactly as it would have without the stop,
    after ``on_resume`` has seen the curve it brought back.
    """
    device = torch.device(device)
    started = time.perf_counter()
    if spec.num_classes != len(splits.classes):
        raise ScalelabError(f"model has {spec.num_classes} outputs but dataset '{splits.name}' has "
                            f"{len(splits.classes)} classes; build the model with --classes "
                            f"{len(splits.classes)}")
    spec = _with_regularisation(spec, config)
    check_fits(spec, batch_size=config.batch_size, training=True, device=device)
    torch.manual_seed(config.seed)
    model = build(spec).to(device)
    channels_last = config.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    x_train, y_train = _to_device(splits.train, device)
    x_val, y_val = _to_device(splits.val, device)
    n = len(y_train)
    if n == 0:
        raise ScalelabError(f"dataset '{splits.name}' has no training images")

    batch = _BatchMaker(spec.resolution, config, generator, channels_last)
    if config.identity_init:
        identity_init(model)
    if config.whiten:
        whiten_first_conv(model, batch.eval(x_train[:_WHITEN_IMAGES]))
    optimizer = _optimizer(model, config)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    averaged = _Average(model, config.ema) if config.ema is not None else None
    slow = _Lookahead(model) if config.lookahead else None
    scored = model if averaged is None else averaged.model
    result = TrainResult(model=spec.name, dataset=splits.name, device=str(device),
                         resolution=spec.resolution, config=dataclasses.asdict(config))
    budget = _Budget(config, n)
    amp = device.type == "cuda" if config.amp is None else config.amp
    if amp:
        _warn_if_slow_bf16(device)
    bar = _ProgressLine(spec.name, enabled=progress)
    train_s = 0.0
    flipped_first = (torch.rand(n, device=device, generator=generator) < 0.5) if config.alternate_flip else None
    state = _TrainState(model, optimizer, averaged, slow, generator, result)
    mark = saved = None
    if checkpoint is not None:
        mark = ckpt.fingerprint(dataclasses.asdict(spec), dataclasses.asdict(config), n)
        saved = ckpt.load(checkpoint, mark)
    if saved is not None:
        train_s = state.restore(saved)
        started -= result.curve[-1].wall_s if result.curve else 0.0  # walls go on from the saved training's
        if on_resume is not None:
            on_resume(list(result.curve))
    try:  # the progress line is ended however training stops (pruned, diverged, interrupted)
        while not budget.done(result.images_seen, train_s):
            model.train()
            epoch_start = time.perf_counter()
            perm = torch.randperm(n, device=device, generator=generator)
            odd_epoch = bool(len(result.curve) % 2)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for start in range(0, n, config.batch_size):
                idx = perm[start:start + config.batch_size]
                if len(idx) < config.batch_size and start > 0:
                    break  # drop the ragged last batch: stable batch-norm statistics and shapes
                frac = budget.fraction(result.images_seen, train_s + time.perf_counter() - epoch_start)
                if frac >= 1.0:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = config.base_lr * _lr_factor(frac, config)
                flips = None if flipped_first is None else flipped_first[idx] ^ odd_epoch
                xb, yb = batch.train(x_train[idx], flips), y_train[idx]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    logits = model(xb)
                    loss = loss_fn(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not None:
                    averaged.update(model)
                if slow is not None:
                    slow.step(frac)
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(1) == yb).sum()
                seen += len(idx)
                result.images_seen += len(idx)
                if seen % (16 * config.batch_size) < config.batch_size:
                    _check_finite(loss_sum, spec.name, result.images_seen)
                bar.update(result.images_seen / n, result.images_seen, train_s + time.perf_counter() - epoch_start)
            if slow is not None:
                slow.sync(frac=budget.fraction(result.images_seen, train_s + time.perf_counter() - epoch_start))
            train_s += time.perf_counter() - epoch_start
            _check_finite(loss_sum, spec.name, result.images_seen)
            tta = config.tta and (config.tta_each_epoch or budget.done(result.images_seen, train_s))
            record = EpochRecord(epoch=result.images_seen / n, images_seen=result.images_seen,
                                 train_loss=loss_sum.item() / max(seen, 1), train_acc=correct.item() / max(seen, 1),
                                 val_acc=evaluate(scored, x_val, y_val, batch, config.eval_batch_size, amp,
                                                  tta=tta, shift=config.tta_shift if tta else 0),
                                 wall_s=time.perf_counter() - started)
            result.curve.append(record)
            if checkpoint is not None:
                ckpt.save(checkpoint, state.saved(train_s), mark)
            bar.epoch(record, train_s)
            if on_epoch is not None:
                on_epoch(record)
    finally:
        bar.close()
    result.train_s = train_s
    result.val_acc = result.curve[-1].val_acc if result.curve else float("nan")
    if evaluate_test:
        x_test, y_test = _to_device(splits.test, device)
        result.test_acc = evaluate(scored, x_test, y_test, batch, config.eval_batch_size, amp, tta=config.tta,
                                   shift=config.tta_shift)
    result.wall_s = time.perf_counter() - started
    return result


@torch.inference_mode()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch: _BatchMaker, batch_size: int = 512,
             amp: bool = False, tta: bool = False, shift: int = 0) -> float:
    """Top-1 accuracy (a fraction) of ``model`` on uint8 NCHW images ``x``; nan for an empty split.
    ``tta``: the logits are averaged over each image and its mirror image; ``shift`` (with ``tta``):
    also over both translated ``shift`` pixels diagonally each way, at half weight."""
    if len(y) == 0:
        return float("nan")
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, len(y), batch_size):
        with torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=amp):
            xb = batch.eval(x[start:start + batch_size])
            logits = model(xb)
            if tta:
                logits = logits.float() + model(xb.flip(3)).float()
                for views in (_translated(xb, shift, +1), _translated(xb, shift, -1)) if shift else ():
                    logits = logits + 0.5 * (model(views).float() + model(views.flip(3)).float())
        correct += (logits.argmax(1) == y[start:start + batch_size]).sum()
    return correct.item() / len(y)


def _translated(x: Tensor, pixels: int, sign: int) -> Tensor:
    """``x`` moved ``pixels`` down and right (``sign`` +1) or up and left (-1), the edge reflected in."""
    padded = F.pad(x, (pixels,) * 4, mode="reflect")
    h, w = x.shape[-2:]
    top = pixels - sign * pixels
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return padded[..., top:top + h, top:top + w].contiguous(memory_format=layout)


class _BatchMaker:
    """uint8 NCHW -> normalised float, augmented (training only), resized to the model's resolution."""

    def __init__(self, resolution: int, config: TrainConfig, generator: torch.Generator,
                 channels_last: bool) -> None:
        self.resolution, self.config, self.generator = resolution, config, generator
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._mean: Tensor | None = None

    def _normalise(self, x: Tensor) -> Tensor:
        if self._mean is None or self._mean.device != x.device:
            self._mean = torch.tensor(CIFAR_MEAN, device=x.device).view(1, 3, 1, 1) * 255
            self._std = torch.tensor(CIFAR_STD, device=x.device).view(1, 3, 1, 1) * 255
        return (x.float() - self._mean) / self._std

    def train(self, x: Tensor, flips: Tensor | None = None) -> Tensor:
        """``flips``: which images to mirror (augment="crop" only); None: chosen at random."""
        x, c = self._normalise(x), self.config
        if c.augment == "affine":
            x = random_affine(x, self.generator, rotation=c.rotation, shift=c.shift, zoom=c.zoom)
        elif c.augment == "crop":
            x = random_crop_flip(x, self.generator, padding=c.crop_padding, flips=flips)
        return resize_batch(x, self.resolution).contiguous(memory_format=self.memory_format)

    def eval(self, x: Tensor) -> Tensor:
        return resize_batch(self._normalise(x), self.resolution).contiguous(memory_format=self.memory_format)


class _Budget:
    """Fraction of the budget used: the largest of the epoch, image and time fractions."""

    def __init__(self, config: TrainConfig, n_train: int) -> None:
        self.max_images = config.image_budget(n_train)
        self.max_seconds = config.max_seconds or math.inf

    def fraction(self, images: int, seconds: float) -> float:
        return max(images / self.max_images, seconds / self.max_seconds)

    def done(self, images: int, seconds: float) -> bool:
        return self.fraction(images, seconds) >= 1.0


def _lr_factor(frac: float, config: TrainConfig) -> float:
    if config.warmup and frac < config.warmup:
        return (frac + 1e-3) / config.warmup
    if config.schedule == "constant":
        return 1.0
    progress = min((frac - config.warmup) / (1 - config.warmup), 1.0)
    if config.schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1 + math.cos(math.pi * progress))


_WHITEN_IMAGES = 2000  # training images whose patches estimate the whitening


@torch.no_grad()
def whiten_first_conv(model: nn.Module, images: Tensor, eps: float = 1e-2) -> nn.Conv2d:
    """Set the first convolution of ``model`` to a frozen patch-whitening layer, from the k x k patches
    of ``images`` (normalised float NCHW, as the network sees them): filter 2i is the i-th principal
    direction divided by the square root of its variance (+ ``eps``), filter 2i + 1 its negative.
    Filters beyond twice the patch dimension keep their initialisation; the layer is frozen whole."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.groups != 1 or conv.in_channels != images.shape[1]:
        raise ScalelabError("whiten needs a network whose first layer is a full (not grouped) "
                            "convolution of the input image")
    kh, kw = conv.kernel_size
    patches = F.unfold(images.float().contiguous(), (kh, kw))  # (N, C*kh*kw, L), no padding
    patches = patches.transpose(1, 2).reshape(-1, patches.shape[1]).double()
    patches = patches - patches.mean(0)
    cov = patches.T @ patches / max(len(patches) - 1, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    order = eigenvalues.flip(0), eigenvectors.flip(1)
    n = min(conv.out_channels // 2, len(eigenvalues))
    filters = (order[1][:, :n] / torch.sqrt(order[0][:n].clamp_min(0) + eps)).T
    filters = filters.reshape(n, conv.in_channels, kh, kw).to(conv.weight.dtype)
    conv.weight[0:2 * n:2] = filters
    conv.weight[1:2 * n:2] = -filters
    conv.weight.requires_grad_(False)
    if conv.bias is not None:
        conv.bias.zero_()
        conv.bias.requires_grad_(False)
    return conv


class _TrainState:
    """Everything a training carries from one epoch to the next, for :mod:`scalelab.checkpoint`."""

    def __init__(self, model: nn.Module, optimizer: optim.SGD | optim.AdamW, averaged: _Average | None,
                 slow: _Lookahead | None, generator: torch.Generator, result: TrainResult) -> None:
        self.model, self.optimizer, self.averaged, self.slow = model, optimizer, averaged, slow
        self.generator, self.result = generator, result

    def saved(self, train_s: float) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "averaged": None if self.averaged is None else
                (self.averaged.model.state_dict(), self.averaged.steps),
                "slow": None if self.slow is None else ([s for s, _ in self.slow.pairs], self.slow.steps),
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "curve": [dataclasses.asdict(r) for r in self.result.curve],
                "images_seen": self.result.images_seen, "train_s": train_s}

    @torch.no_grad()
    def restore(self, saved: dict[str, Any]) -> float:
        """Put a :meth:`saved` state back; returns the seconds of training it had taken."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.averaged is not None:
            self.averaged.model.load_state_dict(saved["averaged"][0])
            self.averaged.steps = saved["averaged"][1]
        if self.slow is not None:
            torch._foreach_copy_([s for s, _ in self.slow.pairs], saved["slow"][0])
            self.slow.steps = saved["slow"][1]
        self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        self.result.curve = [EpochRecord(**r) for r in saved["curve"]]
        self.result.images_seen = saved["images_seen"]
        return saved["train_s"]


class _Average:
    """An exponential moving average of a model's weights and buffers (batch-norm statistics)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.decay, self.steps = decay, 0
        self.pairs = [(a, b) for a, b in zip(self.model.state_dict().values(), model.state_dict().values())
                      if a.is_floating_point()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))  # short memory at the start
        mine, theirs = zip(*self.pairs)
        torch._foreach_lerp_(list(mine), list(theirs), 1 - decay)


class _Lookahead:
    """Slow weights (and batch-norm statistics) that the trained model is pulled back to every
    ``every`` steps (Zhang et al. 2019, "Lookahead Optimizer"), with the share of the slow weights kept
    at a sync rising as ``0.95^5 * frac^3`` over the budget's fraction ``frac`` (airbench's schedule)."""

    every = 5

    def __init__(self, model: nn.Module) -> None:
        self.steps = 0
        self.pairs = [(b.detach().clone(), b) for b in model.state_dict().values() if b.is_floating_point()]

    def step(self, frac: float) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.sync(frac)

    @torch.no_grad()
    def sync(self, frac: float) -> None:
        """Move the slow weights towards the model's and set the model's to them."""
        keep = 0.95**5 * min(frac, 1.0) ** 3
        slow, fast = (list(t) for t in zip(*self.pairs))
        torch._foreach_lerp_(slow, fast, 1 - keep)
        torch._foreach_copy_(fast, slow)


@torch.no_grad()
def identity_init(model: nn.Module) -> None:
    """Set the first ``in_channels`` filters of every full convolution after the first (whose output
    has at least as many channels, with an odd kernel) to the identity; the others keep their
    initialisation."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1:]
    for conv in convs:
        if conv.groups == 1 and conv.out_channels >= conv.in_channels and all(k % 2 for k in conv.kernel_size):
            nn.init.dirac_(conv.weight[:conv.in_channels])


def _optimizer(model: nn.Module, config: TrainConfig) -> optim.SGD | optim.AdamW:
    # No weight decay on batch-norm parameters and biases (one-dimensional tensors).
    trained = [p for p in model.parameters() if p.requires_grad]  # not a frozen whitening layer
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    groups = [dict(params=decay, weight_decay=config.weight_decay), dict(params=no_decay, weight_decay=0.0)]
    if config.optimizer == "adam":
        return optim.AdamW(groups, lr=config.base_lr)
    return optim.SGD(groups, lr=config.base_lr, momentum=config.momentum, nesterov=config.nesterov)


def _with_regularisation(spec: NetworkSpec, config: TrainConfig) -> NetworkSpec:
    head = spec.head if config.dropout is None else dataclasses.replace(spec.head, dropout=config.dropout)
    rate = spec.drop_path_rate if config.drop_path is None else config.drop_path
    return dataclasses.replace(spec, head=head, drop_path_rate=rate)


def _to_device(arrays: tuple[np.ndarray, np.ndarray], device: torch.device) -> tuple[Tensor, Tensor]:
    """uint8 NHWC numpy -> uint8 NCHW tensor on the device (4x smaller than float until batched)."""
    x, y = arrays
    xt = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous().to(device)
    return xt, torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)


@functools.cache
def _warn_if_slow_bf16(device: torch.device) -> None:
    """Once per process and device: bfloat16 autocast where it is emulated (measured 10x slower)."""
    if not has_fast_bf16(device):
        print("warning: bfloat16 autocast on a CPU without native bfloat16 (AVX512-BF16 or AMX) is several "
              "times slower than float32; --no-amp (amp = false) turns it off", file=sys.stderr, flush=True)


def _check_finite(loss_sum: Tensor, model: str, images: int) -> None:
    if not torch.isfinite(loss_sum).item():
        raise TrainingError(f"training of '{model}' diverged: the loss became NaN or infinite after "
                            f"{images:,} images; lower the learning rate (--lr) or add warm-up")


class _ProgressLine:
    """Progress on stderr: on a terminal one line rewritten in place (epoch, images/s, last
    validation accuracy); otherwise (logs, CI) one line per epoch."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name, self.enabled, self.last, self.val = name, enabled, 0.0, ""
        self.tty = sys.stderr.isatty()

    def update(self, epoch: float, images: int, seconds: float) -> None:
        now = time.monotonic()
        if self.enabled and self.tty and now - self.last > 0.5:
            self.last = now
            sys.stderr.write(f"\r{self._line(epoch, images, seconds)}   ")
            sys.stderr.flush()

    def epoch(self, record: EpochRecord, seconds: float) -> None:
        self.val = f", val acc {100 * record.val_acc:.2f}%"
        if self.enabled:
            line = self._line(record.epoch, record.images_seen, seconds)
            sys.stderr.write(f"\r{line}   " if self.tty else line + "\n")
            sys.stderr.flush()

    def _line(self, epoch: float, images: int, seconds: float) -> str:
        rate = images / seconds if seconds else 0.0
        return f"{self.name}: epoch {epoch:.2f}, {rate:,.0f} images/s{self.val}"

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
