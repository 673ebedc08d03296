"""Dataset names, where their files live, and :func:`load_dataset`.

The data root is the ``data_dir`` argument (the CLI's ``--data-dir``), else ``$SCALELAB_DATA``, else
``<cache dir>/data`` (``$SCALELAB_CACHE`` or ``~/.cache/scalelab``). ``cifar10`` reads the official
``cifar-10-batches-py/`` there; if that folder is absent but a ``cifar10-jpg/`` image folder (the
``train/<class>/*.jpg`` layout) is present, that is used instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from scalelab.data.cache import cache_dir
from scalelab.data.cifar import ARCHIVES, load_cifar10, load_cifar100
from scalelab.data.dataset import ImageDataset, select_classes
from scalelab.data.imagefolder import load_image_folder
from scalelab.data.mini import load_cifar10_mini
from scalelab.errors import DataError

IMAGEFOLDER_PREFIX = "imagefolder:"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_3CLASS = ("cat", "deer", "dog")  # the seed report's 3-class task

_Loader = Callable[[Path, bool, bool], ImageDataset]


def data_root(data_dir: str | Path | None = None) -> Path:
    """The folder that holds (or will receive) the dataset files."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("SCALELAB_DATA")
    return Path(env).expanduser() if env else cache_dir() / "data"


def _cifar10(root: Path, download: bool, verify: bool) -> ImageDataset:
    jpg = root / "cifar10-jpg"
    if (root / ARCHIVES["cifar10"].folder).exists() or not jpg.is_dir():
        return load_cifar10(root, download=download, verify=verify)
    ds = load_image_folder(jpg, "cifar10")
    if ds.classes != CIFAR10_CLASSES:
        raise DataError(f"{jpg} holds classes {', '.join(ds.classes)}, not the 10 CIFAR-10 ones; fix or move it")
    return ds


def _cifar10_3class(root: Path, download: bool, verify: bool) -> ImageDataset:
    """From an image folder only the three classes' folders are decoded (18,000 of the 60,000 images)."""
    jpg = root / "cifar10-jpg"
    if (root / ARCHIVES["cifar10"].folder).exists() or not jpg.is_dir():
        return select_classes(load_cifar10(root, download=download, verify=verify), CIFAR10_3CLASS, "cifar10-3class")
    return load_image_folder(jpg, "cifar10-3class", classes=CIFAR10_3CLASS)


_LOADERS: dict[str, _Loader] = {
    "cifar10": _cifar10,
    "cifar10-3class": _cifar10_3class,
    "cifar10-mini": lambda root, dl, v: load_cifar10_mini(),
    "cifar100": lambda root, dl, v: load_cifar100(root, download=dl, verify=v),
    "cifar100-coarse": lambda root, dl, v: load_cifar100(root, coarse=True, download=dl, verify=v),
}


def dataset_names() -> list[str]:
    """The fixed names; any ``imagefolder:<path>`` is valid as well."""
    return list(_LOADERS)


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, download: bool = False, verify: bool = True
) -> ImageDataset:
    """Load a dataset by name (see :func:`dataset_names`) or as ``imagefolder:<path>``.

    ``download`` fetches a missing official archive (MD5-checked); ``verify`` checks official files against
    their published MD5s before reading them (turn it off only for your own files in the same format).
    ``cifar10-mini`` ignores ``data_dir``; an ``imagefolder:`` path is taken as given (relative to the
    working directory), not under the data root.
    """
    if name.startswith(IMAGEFOLDER_PREFIX):
        path = name[len(IMAGEFOLDER_PREFIX) :]
        if not path:
            raise DataError(f"{name!r} names no folder; write imagefolder:<path to a folder with train/ and test/>")
        return load_image_folder(path, name)
    loader = _LOADERS.get(name)
    if loader is None:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(_LOADERS)}, or {IMAGEFOLDER_PREFIX}<path>")
    return loader(data_root(data_dir), download, verify)
