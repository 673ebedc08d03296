"""Image folders (``train/<class>/*``, ``test/<class>/*``): decoded on all cores once, then cached.

The decoded uint8 array is cached under ``<cache dir>/imagefolder/`` keyed by a hash of the folder path
and every file's name, size and modification time, so any change to the folder decodes it again. A
checksum beside it is verified on every load, so a damaged cache is decoded again, never used.
"""

from __future__ import annotations

import hashlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from scalelab.data.cache import cache_dir, load_array, save_array
from scalelab.data.dataset import ImageDataset
from scalelab.data.progress import Progress
from scalelab.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"})
_SPLITS = ("train", "test")
_CHUNK = 1000  # images per worker task: large enough that inter-process overhead stays small
_CACHE_FORMAT = 1  # bump when the cached array's meaning changes


def load_image_folder(
    root: str | Path,
    name: str | None = None,
    *,
    classes: tuple[str, ...] | None = None,
    cache: bool = True,
    workers: int | None = None,
) -> ImageDataset:
    """Load ``root/train/<class>/*`` and ``root/test/<class>/*``; classes are the sorted folder names, or
    only ``classes`` (labelled in that order: the other folders are not read).

    Images must all have one size; they are converted to RGB. ``workers`` defaults to every core.
    """
    root = Path(root).expanduser()
    classes, files, labels, n_train = _scan(root, classes)
    cache_file = cache_dir() / "imagefolder" / f"{root.name}-{_cache_key(root, files)}.npy"
    x = _read_cache(cache_file, len(files)) if cache else None
    if x is None:
        paths = [os.path.join(root, rel) for rel, _, _ in files]
        x = _decode_all(paths, workers, f"decoding {root.name}")
        if cache:
            _write_cache(cache_file, x)
    y = np.asarray(labels, dtype=np.int64)
    name = name or f"imagefolder:{root}"
    return ImageDataset(name, classes, x[:n_train], y[:n_train], x[n_train:], y[n_train:], str(root))


def _scan(
    root: Path, wanted: tuple[str, ...] | None
) -> tuple[tuple[str, ...], list[tuple[str, int, int]], list[int], int]:
    """Classes, then ``(relative path, size, mtime_ns)`` and label of every image, train first."""
    layout = f"expected {root}/train/<class>/<image> and {root}/test/<class>/<image>"
    for split in _SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"{root} is not an image folder: no {split}/ inside; {layout}")
    found = _class_dirs(root / "train")
    if not found:
        raise DataError(f"{root}/train has no class folders; {layout}")
    if _class_dirs(root / "test") != found:
        raise DataError(f"{root}/test and {root}/train hold different class folders; give both the same ones")
    missing = [c for c in wanted or () if c not in found]
    if missing:
        raise DataError(f"{root} has no class folder {', '.join(missing)}; it has {', '.join(found)}")
    classes = list(wanted) if wanted else found
    files: list[tuple[str, int, int]] = []
    labels: list[int] = []
    n_train = 0
    for split in _SPLITS:
        for label, cls in enumerate(classes):
            entries = sorted(
                (e for e in os.scandir(root / split / cls) if e.is_file() and _is_image(e.name)),
                key=lambda e: e.name,
            )
            if split == "train" and not entries:
                kinds = ", ".join(sorted(IMAGE_SUFFIXES))
                raise DataError(f"{root}/train/{cls} holds no images ({kinds}); add some or remove the folder")
            for e in entries:
                st = e.stat()
                files.append((f"{split}/{cls}/{e.name}", st.st_size, st.st_mtime_ns))
                labels.append(label)
        if split == "train":
            n_train = len(files)
    return tuple(classes), files, labels, n_train


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _cache_key(root: Path, files: list[tuple[str, int, int]]) -> str:
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\n{root.resolve()}\n".encode())
    for rel, size, mtime in files:
        digest.update(f"{rel}\t{size}\t{mtime}\n".encode())
    return digest.hexdigest()[:16]


def _decode_all(paths: list[str], workers: int | None, desc: str) -> np.ndarray:
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    workers = min(workers or os.cpu_count() or 1, len(chunks))
    x = np.empty((len(paths), *_decode_chunk(paths[:1]).shape[1:]), dtype=np.uint8)  # the first image sets the size
    with ExitStack() as stack:
        bar = stack.enter_context(Progress(desc, len(paths), unit="img"))
        if workers > 1:
            pool = ProcessPoolExecutor(workers)
            stack.callback(pool.shutdown, cancel_futures=True)  # on an error or Ctrl-C, drop queued chunks
            decoded = pool.map(_decode_chunk, chunks)
        else:
            decoded = map(_decode_chunk, chunks)
        start = 0
        for chunk, arr in zip(chunks, decoded, strict=True):
            if arr.shape[1:] != x.shape[1:]:
                raise DataError(_size_mismatch(paths[0], x.shape, chunk[0], arr.shape))
            x[start : start + len(arr)] = arr
            start += len(arr)
            bar.update(len(arr))
    return x


def _decode_chunk(paths: list[str]) -> np.ndarray:
    """Decode images to one uint8 ``(n, H, W, 3)`` array (runs in a worker process)."""
    images = []
    for path in paths:
        try:
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB")))
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DataError(f"cannot decode image {path} ({e}); replace or remove it") from None
        if images[-1].shape != images[0].shape:
            raise DataError(_size_mismatch(paths[0], images[0].shape, path, images[-1].shape))
    return np.stack(images)


def _size_mismatch(a: str, shape_a: tuple[int, ...], b: str, shape_b: tuple[int, ...]) -> str:
    return (
        f"images differ in size: {a} is {shape_a[-2]}x{shape_a[-3]}, {b} is {shape_b[-2]}x{shape_b[-3]} (WxH); "
        "resize the folder to one size first"
    )


def _read_cache(path: Path, n: int) -> np.ndarray | None:
    x = load_array(path, what="image cache")
    if x is None:
        return None
    if x.dtype == np.uint8 and x.ndim == 4 and len(x) == n:
        return x
    print(f"image cache {path} holds {x.shape} {x.dtype}, not {n} uint8 images; rebuilding it", file=sys.stderr)
    return None


def _write_cache(path: Path, x: np.ndarray) -> None:
    try:
        save_array(path, x)
    except OSError as e:
        print(f"could not write cache {path} ({e}); the next load decodes again", file=sys.stderr)
