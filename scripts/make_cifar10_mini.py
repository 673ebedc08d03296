"""Make ``scalelab/data/cifar10_mini.npz``, the embedded ``cifar10-mini`` dataset.

It holds the first N training and M test images of every class (file-name order, so the result is the
same on every run) of a CIFAR-10 image folder laid out as ``train/<class>/*.jpg``, ``test/<class>/*.jpg``::

    python scripts/make_cifar10_mini.py ../shared/data/cifar10-jpg --note "..."
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from scalelab.data.dataset import ImageDataset
from scalelab.data.imagefolder import load_image_folder
from scalelab.data.mini import save_mini
from scalelab.data.registry import CIFAR10_CLASSES
from scalelab.errors import DataError

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "scalelab" / "data" / "cifar10_mini.npz"


def first_per_class(y: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Indices of the first ``n`` images of each class, class by class."""
    picks = []
    for label in range(num_classes):
        idx = np.flatnonzero(y == label)[:n]
        if len(idx) < n:
            raise DataError(f"class {label} has only {len(idx)} images, fewer than the {n} asked for; ask for fewer")
        picks.append(idx)
    return np.concatenate(picks)


def make_mini(source: Path, train_per_class: int, test_per_class: int) -> ImageDataset:
    full = load_image_folder(source, "cifar10", cache=False)
    if full.classes != CIFAR10_CLASSES:
        raise DataError(f"{source} holds classes {', '.join(full.classes)}, not the CIFAR-10 ones; use cifar10-jpg")
    tr = first_per_class(full.y_train, train_per_class, full.num_classes)
    te = first_per_class(full.y_test, test_per_class, full.num_classes)
    return ImageDataset(
        "cifar10-mini", full.classes, full.x_train[tr], full.y_train[tr], full.x_test[te], full.y_test[te], str(source)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="CIFAR-10 image folder, e.g. ../shared/data/cifar10-jpg")
    parser.add_argument("--train-per-class", type=int, default=250)
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--note", default="", help="where the source folder came from, stored in the provenance")
    args = parser.parse_args(argv)
    try:
        mini = make_mini(args.source, args.train_per_class, args.test_per_class)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    provenance = (
        f"CIFAR-10 (Krizhevsky, 2009): the first {args.train_per_class} training and {args.test_per_class} test "
        f"images of each class, in file-name order, of the image folder {args.source.name}/; "
        "made by scripts/make_cifar10_mini.py" + (f"; {args.note}" if args.note else "")
    )
    save_mini(mini, args.out, provenance)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB, {len(mini.y_train)} train / {len(mini.y_test)} test images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
