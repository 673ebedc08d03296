"""A validation set carved out of the training set, so the test set is only used for the final number."""

from __future__ import annotations

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
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}; e.g. 0.1 holds out 10% of each class")
    rng = np.random.default_rng(seed)
    chosen = []
    for label, cls in enumerate(ds.classes):
        idx = np.flatnonzero(ds.y_train == label)
        n_val = round(len(idx) * val_fraction)
        if len(idx) and n_val == len(idx):
            raise DataError(
                f"val_fraction {val_fraction} leaves no training image of class {cls!r} ({len(idx)} in all); "
                "use a smaller one"
            )
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
