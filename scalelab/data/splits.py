"""A validation set carved out of the training set, so the test set is only used for the final number;
optionally training on a stratified share of the rest, so that a study can train its networks for
enough epochs to converge on a small budget."""

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
    train_fraction: float = 1.0

    def get(self, split: str) -> Arrays:
        """The arrays of split ``"train"``, ``"val"`` or ``"test"``."""
        if split not in SPLIT_NAMES:
            raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, split)


def split_validation(ds: ImageDataset, val_fraction: float = 0.1, seed: int = 0,
                     train_fraction: float = 1.0) -> Splits:
    """Move ``val_fraction`` of each class's training images (chosen with ``seed``) to a validation set,
    then keep ``train_fraction`` of each class's remaining images for training (also chosen with ``seed``;
    the validation set does not depend on it).

    Both parts keep the original order of the training set.
    """
    _check_fraction("val_fraction", val_fraction, False, "e.g. 0.1 holds out 10% of each class (searches "
                    "select on the validation split, so it cannot be empty)")
    _check_fraction("train_fraction", train_fraction, True, "e.g. 0.1 trains on a tenth of each class's "
                    "images, 1 on all of them")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    chosen, kept = [], []
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
        order = rng.permutation(idx)
        chosen.append(order[:n_val])
        if train_fraction < 1:
            rest = order[n_val:]
            n_train = round(len(rest) * train_fraction)
            if n_train == 0:
                raise DataError(f"train_fraction {train_fraction} leaves class {cls!r} no training image "
                                f"({len(rest)} after the validation split); use a larger one")
            kept.append(rest[:n_train])
    is_val = np.zeros(len(ds.y_train), dtype=bool)
    is_val[np.concatenate(chosen)] = True
    is_train = ~is_val
    if kept:
        is_train = np.zeros(len(ds.y_train), dtype=bool)
        is_train[np.concatenate(kept)] = True
    return Splits(
        name=ds.name,
        classes=ds.classes,
        train=(ds.x_train[is_train], ds.y_train[is_train]),
        val=(ds.x_train[is_val], ds.y_train[is_val]),
        test=(ds.x_test, ds.y_test),
        val_fraction=val_fraction,
        seed=seed,
        train_fraction=train_fraction,
    )


def _check_fraction(name: str, value: object, one_allowed: bool, example: str) -> None:
    """A real number in (0, 1), or (0, 1] if ``one_allowed``; else a one-line error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not (0 < value <= 1 if one_allowed else 0 < value < 1):
        raise DataError(f"{name} must be in (0, 1{']' if one_allowed else ')'}, got {value}; {example}")
