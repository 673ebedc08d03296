"""The official CIFAR-10 / CIFAR-100 python archives: finding, fetching, verifying and reading them."""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scalelab.data.dataset import ImageDataset
from scalelab.data.download import extract_tar, fetch, file_md5
from scalelab.errors import DataError


@dataclass(frozen=True)
class ArchiveSpec:
    """One official archive: where to get it and what it unpacks to (file name -> MD5)."""

    title: str
    url: str
    md5: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    md5s: Mapping[str, str]
    alternative: str = ""

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train, *self.test, self.meta)


_CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

# MD5s: the archives' are the publishers'; the per-file ones are those torchvision checks.
ARCHIVES: dict[str, ArchiveSpec] = {
    "cifar10": ArchiveSpec(
        title="CIFAR-10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        train=_CIFAR10_BATCHES,
        test=("test_batch",),
        meta="batches.meta",
        md5s={
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
            "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
        alternative=" (or a cifar10-jpg/ image folder)",
    ),
    "cifar100": ArchiveSpec(
        title="CIFAR-100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        folder="cifar-100-python",
        train=("train",),
        test=("test",),
        meta="meta",
        md5s={
            "train": "16019d7e3df5f24257cddd939b257f8d",
            "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "meta": "7973b15100ade9c7d40fb424638fde48",
        },
    ),
}


def load_cifar10(root: Path, *, download: bool = False, verify: bool = True) -> ImageDataset:
    """Read ``root/cifar-10-batches-py``; ``verify`` checks each file against the official MD5 first."""
    return _load("cifar10", "cifar10", "labels", "label_names", root, download, verify)


def load_cifar100(root: Path, *, coarse: bool = False, download: bool = False, verify: bool = True) -> ImageDataset:
    """Read ``root/cifar-100-python`` with its 100 fine labels, or the 20 coarse ones if ``coarse``."""
    kind = "coarse" if coarse else "fine"
    name = "cifar100-coarse" if coarse else "cifar100"
    return _load("cifar100", name, f"{kind}_labels", f"{kind}_label_names", root, download, verify)


def _load(
    key: str, name: str, label_key: str, names_key: str, root: Path, download: bool, verify: bool
) -> ImageDataset:
    spec = ARCHIVES[key]
    folder = root / spec.folder
    _ensure_files(spec, root, download)
    classes = _class_names(_read(folder / spec.meta, spec, verify), names_key, folder / spec.meta)
    x_train, y_train = _stack([folder / f for f in spec.train], spec, verify, label_key)
    x_test, y_test = _stack([folder / f for f in spec.test], spec, verify, label_key)
    return ImageDataset(name, classes, x_train, y_train, x_test, y_test, str(folder))


def _ensure_files(spec: ArchiveSpec, root: Path, download: bool) -> None:
    if download and _missing(spec, root):
        fetch(spec.url, root / spec.filename, spec.md5)
        extract_tar(root / spec.filename, root)
    missing = _missing(spec, root)
    if missing:
        raise DataError(
            f"{spec.title} not found in {root}: expected {spec.folder}/{{{', '.join(spec.files)}}}{spec.alternative}, "
            f"missing {', '.join(missing)}; pass the folder that holds {spec.folder}/ with --data-dir "
            f"(or SCALELAB_DATA), or add --download to fetch {spec.filename}"
        )


def _missing(spec: ArchiveSpec, root: Path) -> list[str]:
    return [f for f in spec.files if not (root / spec.folder / f).is_file()]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what the CIFAR files hold (dicts, lists, numpy arrays): a pickle can run code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read(path: Path, spec: ArchiveSpec, verify: bool) -> dict[str, Any]:
    if verify and file_md5(path) != spec.md5s[path.name]:
        raise DataError(
            f"{path} does not match the official {spec.title} MD5 (corrupt, truncated or not the official file); "
            "delete it and fetch it again with --download, or load your own files in this format with verify=False"
        )
    try:
        obj = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as e:  # a damaged pickle fails in many ways (EOFError, ValueError, UnpicklingError, ...)
        raise DataError(
            f"{path} is not a readable CIFAR pickle ({type(e).__name__}: {e}); replace it with the official file"
        ) from e
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a CIFAR dict; replace it with the official file")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _class_names(meta: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    names = meta.get(key)
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataError(f"{path} has no list of class names under {key!r}; replace it with the official file")
    return tuple(n.decode() if isinstance(n, bytes) else n for n in names)


def _stack(paths: list[Path], spec: ArchiveSpec, verify: bool, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (HWC) and labels of the batch files ``paths``, concatenated."""
    xs, ys = [], []
    for path in paths:
        batch = _read(path, spec, verify)
        data, labels = batch.get("data"), np.asarray(batch.get(label_key))
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DataError(f"{path}: 'data' must be uint8 (N, 3072), got {got}; replace it with the official file")
        if labels.ndim != 1 or len(labels) != len(data) or labels.dtype.kind not in "iu":
            raise DataError(
                f"{path}: {label_key!r} must hold {len(data)} integer labels, got {labels.dtype} {labels.shape}; "
                "replace it with the official file"
            )
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # stored channel-planar (CHW)
        ys.append(labels.astype(np.int64))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)
