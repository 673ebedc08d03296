"""``cifar10-mini``: a small stratified CIFAR-10 subset shipped inside the package (no download needed)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.data.cache import atomic_write
from scalelab.data.dataset import ImageDataset
from scalelab.errors import DataError

MINI_FILE = "cifar10_mini.npz"


def load_cifar10_mini() -> ImageDataset:
    """The embedded subset; ``source`` starts with ``embedded:`` and carries its provenance."""
    try:
        with (resources.files("scalelab.data") / MINI_FILE).open("rb") as f, np.load(f) as z:
            return ImageDataset(
                "cifar10-mini",
                tuple(str(c) for c in z["classes"]),
                z["x_train"],
                z["y_train"],
                z["x_test"],
                z["y_test"],
                f"embedded: {z['provenance']}",
            )
    except FileNotFoundError as e:
        raise DataError(f"the embedded {MINI_FILE} is missing from the scalelab package; reinstall scalelab") from e


def save_mini(ds: ImageDataset, path: Path, provenance: str) -> None:
    """Write ``ds`` in the format :func:`load_cifar10_mini` reads (compressed, atomically)."""
    arrays: dict[str, Any] = {
        "x_train": ds.x_train,
        "y_train": ds.y_train,
        "x_test": ds.x_test,
        "y_test": ds.y_test,
        "classes": np.array(ds.classes),
        "provenance": np.array(provenance),
    }
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
