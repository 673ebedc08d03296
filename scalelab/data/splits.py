"""A validation set carved out of the training set, so the test set is only used for the final number."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scalelab.data.dataset import ImageDataset
from scalelab.errors import DataError

SPLIT_NAMES = ("train", "val", "test")

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Splits:
    """``(images, labels)`` for each of ``SPLIT_NAMES``, and how the validation set was drawn."""

    name: str
    classes: tuple[str, ...]
    train: Arrays
    val: Arrays
    test: Arrays
    val_fraction: float
    seed: int

    def get(self, split: str) -> Arrays:
        """The arrays of split ``"train"``, ``"val"`` or ``"test"``."""
        if split not in SPLIT_NAMES:
            raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, split)


def split_validation(ds: ImageDataset, val_fraction: float = 0.1, seed: int = 0) -> Splits:
    """Move ``val_fraction`` of each class's training images (chosen with ``seed``) to a validation set.

    Both parts keep the original order of the training set.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.integer, np.floating)):
        raise DataError(f"val_fraction must be a number, got {val_fraction!r} ({type(val_fraction).__name__})")
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}; e.g. 0.1 holds out 10% of each "
                        "class (searches select on the validation split, so it cannot be empty)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    counts = [int(np.count_nonzero(ds.y_train == label)) for label in range(len(ds.classes))]
    for label, cls in enumerate(ds.classes):
        idx = np.flatnonzero(ds.y_train == label)
        n_val = round(len(idx) * val_fraction)
        if len(idx) and n_val == len(idx):
            raise DataError(
                f"val_fraction {val_fraction} leaves no training image of class {cls!r} ({len(idx)} in all); "
                "use a smaller one"
            )
        if n_val == 0:
            smallest = min(n for n in counts if n) if any(counts) else 0
            hint = (f"; use at least {math.ceil(100 * 0.5 / smallest + 1e-9) / 100:g} "
                    f"(the smallest class has {smallest} training images)" if smallest > 1 else "")
            raise DataError(f"val_fraction {val_fraction} gives class {cls!r} no validation image "
                            f"({len(idx)} training images){hint}")
        chosen.append(rng.permutation(idx)[:n_val])
    is_val = np.zeros(len(ds.y_train), dtype=bool)
    is_val[np.concatenate(chosen)] = True
    return Splits(
        name=ds.name,
        classes=ds.classes,
        train=(ds.x_train[~is_val], ds.y_train[~is_val]),
        val=(ds.x_train[is_val], ds.y_train[is_val]),
        test=(ds.x_test, ds.y_test),
        val_fraction=val_fraction,
        seed=seed,
    )
