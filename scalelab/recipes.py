"""Named training recipes: sets of :class:`~scalelab.train.TrainConfig` settings, each with the network
preset it was tuned on.

``TrainConfig(recipe="fast")``, ``scalelab train --recipe fast`` and ``recipe = "fast"`` in a study
file's ``[train]`` table all take a recipe's settings for every field not given explicitly. A recipe
sets no budget (epochs, images or seconds): say how long to train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True)
class Recipe:
    """``settings``: TrainConfig field -> value; ``preset`` at ``width`` (a channel multiplier): the
    network it was tuned on; ``summary``: one line."""

    name: str
    summary: str
    preset: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    width: float = 1.0


# Tuned on CIFAR-10 with 2 AVX2 cores (no bfloat16: amp stays off). At equal training time the half-width
# fast_convnet (16/32/64/128 channels) beat the 0.75-width one (74.8% vs 70.2% test after 2 and 1
# epochs); the whitening layer added 1.2 points at 2 epochs; EMA (0.99) added nothing under a schedule
# that decays to zero, so it is left off.
_FAST = Recipe(
    name="fast",
    summary=("CPU-frontier CIFAR recipe (airbench's published ideas): SGD-Nesterov with a triangular "
             "learning rate, label smoothing, flip + 2 px translation, a frozen patch-whitening first "
             "layer, flip test-time augmentation"),
    preset="fast_convnet",
    width=0.5,
    settings=MappingProxyType(dict(
        optimizer="sgd", lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4, batch_size=256,
        warmup=0.2, schedule="linear", label_smoothing=0.2, augment="crop", crop_padding=2,
        whiten=True, tta=True)),
)

# Measured on cifar10-mini (2,025 training images), EfficientNet-B0-32 at half width and depth, the
# validation accuracy after one epoch at the peak learning rate (one seed, busy machine): the study
# files' Adam 3e-3, batches of 64, warm-up 0.2 of the epoch: 10.0% (chance; train accuracy 16.5%);
# this recipe: 26.8%; batches of 32 at 3e-3 without dropout or stochastic depth: 21.2%.
_SMALL_DATA = Recipe(
    name="small-data",
    summary=("short trials on small data (a few thousand images): Adam at 2e-3 with a short warm-up, "
             "batches of 32 so an epoch is enough steps to learn from, pad-and-crop + flip"),
    preset="efficientnet_b0_32",
    settings=MappingProxyType(dict(optimizer="adam", lr=2e-3, batch_size=32, warmup=0.02,
                                   augment="crop")),
)

# Tuned on CIFAR-10 with 2 cores that have AMX-BF16 (bfloat16 autocast: 2.5x fp32 on frontier_convnet), for
# the whole command within 10 minutes. At equal training time frontier_convnet (11 epochs) beat fast_convnet
# (16-20 epochs) and the 64/256/256-wide layout (7 epochs): 88.4%, 87.8% and 87.6% test with the fast
# recipe. Lookahead, identity init and shifted TTA together added 0.5 points after 4 epochs of fast_convnet
# and 0.3 after 10.5 epochs of frontier_convnet (one seed each); lookahead alone added nothing at 4 epochs.
# With pooling before BN (1.4x faster), 15 epochs: 89.35% test; alternating flips 89.64%; batches of 128 at
# half the learning rate (as fast per image) 89.79% in 14 epochs, 89.88% at lr 0.3 (one seed each).
_FRONTIER = Recipe(
    name="frontier",
    summary=("the fast recipe plus Lookahead, identity-initialised convolutions, alternating flips, shifted "
             "flip test-time augmentation (each epoch's validation scores one view, the last the six), batches "
             "of 128 and bfloat16 autocast (pass --no-amp on CPUs without AVX512-BF16 or AMX)"),
    preset="frontier_convnet",
    settings=MappingProxyType(dict(_FAST.settings, amp=True, lookahead=True, identity_init=True, tta_shift=1,
                                   tta_each_epoch=False, alternate_flip=True, batch_size=128, lr=0.2)),
)

RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in (_FAST, _SMALL_DATA, _FRONTIER)})


def recipe_names() -> list[str]:
    return list(RECIPES)
