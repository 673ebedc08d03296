"""The in-memory form every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalelab.errors import DataError


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image set held as numpy arrays.

    Images are uint8 ``(N, H, W, 3)``; labels int64 ``(N,)`` index into ``classes``. ``source`` says where
    the pixels came from (a path, or ``embedded: ...`` with the provenance of a shipped file).
    """

    name: str
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            _check_split(self, split)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of every image."""
        return int(self.x_train.shape[1]), int(self.x_train.shape[2])


def _check_split(ds: ImageDataset, split: str) -> None:
    x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
    where = f"dataset {ds.name!r} ({ds.source}), {split} split"
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise DataError(f"{where}: images must be uint8 (N, H, W, 3), got {x.dtype} {x.shape}; re-create the files")
    if y.dtype != np.int64 or y.shape != (len(x),):
        raise DataError(f"{where}: labels must be int64 ({len(x)},), got {y.dtype} {y.shape}; re-create the files")
    if len(y) and (y.min() < 0 or y.max() >= len(ds.classes)):
        raise DataError(
            f"{where}: labels must lie in 0..{len(ds.classes) - 1}, got {y.min()}..{y.max()}; "
            "fix the labels or the class list"
        )
    if split == "test" and len(x) and x.shape[1:] != ds.x_train.shape[1:]:
        raise DataError(f"{where}: test images are {x.shape[1:3]}, train images {ds.x_train.shape[1:3]}; use one size")


def select_classes(ds: ImageDataset, classes: tuple[str, ...], name: str) -> ImageDataset:
    """Keep only ``classes`` (in that order), relabelled 0..len(classes)-1."""
    missing = [c for c in classes if c not in ds.classes]
    if missing:
        raise DataError(f"dataset {ds.name!r} has no class {', '.join(missing)}; it has {', '.join(ds.classes)}")
    old = np.array([ds.classes.index(c) for c in classes])
    remap = np.full(len(ds.classes), -1, dtype=np.int64)
    remap[old] = np.arange(len(classes))

    def pick(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.isin(y, old)
        return x[keep], remap[y[keep]]

    x_train, y_train = pick(ds.x_train, ds.y_train)
    x_test, y_test = pick(ds.x_test, ds.y_test)
    return ImageDataset(name, tuple(classes), x_train, y_train, x_test, y_test, ds.source)
