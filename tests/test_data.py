"""Tests of scalelab.data: tiny files in the official CIFAR formats and tiny image folders, all in tmp_path."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from scalelab.data import (
    SPLIT_NAMES,
    ImageDataset,
    augment,
    cifar,
    data_root,
    dataset_names,
    imagefolder,
    load_dataset,
    split_validation,
)
from scalelab.data.augment import random_affine, random_crop_flip, resize_batch
from scalelab.data.imagefolder import load_image_folder
from scalelab.errors import DataError

REPO = Path(__file__).resolve().parents[1]
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every cache and data root inside tmp_path."""
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SCALELAB_DATA", raising=False)


# --- helpers: the official pickle formats, image folders -----------------------------------------------------


def _images(n: int, seed: int, h: int = 32, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _dump(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _planar(x: np.ndarray) -> np.ndarray:
    """HWC images to the official (N, 3072) channel-planar rows."""
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def _fake_cifar10(root: Path, per_batch: int = 4) -> tuple[np.ndarray, ...]:
    """Write cifar-10-batches-py/ with ``per_batch`` images per file; return the expected arrays."""
    folder = root / "cifar-10-batches-py"
    xs, ys = [], []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        x = _images(per_batch, seed=i)
        y = [(i * per_batch + j) % 10 for j in range(per_batch)]
        _dump(folder / name, {b"batch_label": name.encode(), b"labels": y, b"data": _planar(x), b"filenames": []})
        xs.append(x)
        ys.append(np.array(y, dtype=np.int64))
    _dump(folder / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072})
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def _fake_cifar100(root: Path, n: int = 6) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    out = {}
    for i, split in enumerate(("train", "test")):
        x = _images(n, seed=10 + i)
        fine, coarse = np.arange(n) * 17 % 100, np.arange(n) * 3 % 20
        _dump(folder / split, {b"data": _planar(x), b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist()})
        out |= {f"x_{split}": x, f"fine_{split}": fine, f"coarse_{split}": coarse}
    meta = {
        b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
    }
    _dump(folder / "meta", meta)
    return out


def _real_md5s(monkeypatch: pytest.MonkeyPatch, key: str, folder: Path) -> None:
    """Make the MD5 table describe the fake files, so the verified path can load them."""
    spec = cifar.ARCHIVES[key]
    md5s = {f: hashlib.md5((folder / f).read_bytes()).hexdigest() for f in spec.files}
    monkeypatch.setitem(cifar.ARCHIVES, key, dataclasses.replace(spec, md5s=md5s))


def _write_folder(
    root: Path, classes: tuple[str, ...], n_train: int = 3, n_test: int = 2, hw: tuple[int, int] = (6, 8)
) -> dict[str, np.ndarray]:
    """PNG image folder (lossless, so pixels can be compared); returns expected arrays in sorted-class order."""
    expected: dict[str, list] = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for label, cls in enumerate(sorted(classes)):
        for split, n in (("train", n_train), ("test", n_test)):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            x = _images(n, seed=hash((cls, split)) % 2**32, h=hw[0], w=hw[1])
            for j, img in enumerate(x):
                Image.fromarray(img).save(root / split / cls / f"{j:04d}.png")
            expected[f"x_{split}"].extend(x)
            expected[f"y_{split}"].extend([label] * n)
    return {k: np.array(v, dtype=np.uint8 if k[0] == "x" else np.int64) for k, v in expected.items()}


def _assert_same(ds: ImageDataset, expected: dict[str, np.ndarray]) -> None:
    for key, value in expected.items():
        np.testing.assert_array_equal(getattr(ds, key), value, err_msg=key)


# --- registry and data root ----------------------------------------------------------------------------------


def test_dataset_names_and_unknown_name_lists_them() -> None:
    assert dataset_names() == ["cifar10", "cifar10-3class", "cifar10-mini", "cifar100", "cifar100-coarse"]
    with pytest.raises(DataError, match=r"unknown dataset 'cifar11'; valid names: cifar10, .*imagefolder:<path>"):
        load_dataset("cifar11")
    with pytest.raises(DataError, match="names no folder"):
        load_dataset("imagefolder:")


def test_data_root_prefers_argument_then_env_then_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_root() == tmp_path / "cache" / "data"
    monkeypatch.setenv("SCALELAB_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    _fake_cifar10(tmp_path / "env")
    assert load_dataset("cifar10", verify=False).source == str(tmp_path / "env" / "cifar-10-batches-py")


def test_embedded_mini_is_stratified_small_and_says_where_it_came_from() -> None:
    ds = load_dataset("cifar10-mini", data_dir="/nonexistent")
    assert ds.classes == CIFAR10_CLASSES
    assert ds.x_train.shape == (2500, 32, 32, 3) and ds.x_test.shape == (500, 32, 32, 3)
    assert np.bincount(ds.y_train).tolist() == [250] * 10 and np.bincount(ds.y_test).tolist() == [50] * 10
    assert ds.source.startswith("embedded: CIFAR-10") and "make_cifar10_mini.py" in ds.source
    assert ds.x_train.std() > 30  # real pixels, not a blank placeholder
    assert (REPO / "scalelab" / "data" / "cifar10_mini.npz").stat().st_size <= 12_000_000


# --- official CIFAR archives ---------------------------------------------------------------------------------


def test_cifar10_pickles_are_read_as_hwc_images(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = _fake_cifar10(tmp_path)
    ds = load_dataset("cifar10", tmp_path, verify=False)
    assert ds.name == "cifar10" and ds.classes == CIFAR10_CLASSES
    _assert_same(ds, {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test})


def test_verification_rejects_non_official_files_and_accepts_matching_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x_train, *_ = _fake_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"does not match the official CIFAR-10 MD5.*verify=False"):
        load_dataset("cifar10", tmp_path)
    _real_md5s(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py")
    np.testing.assert_array_equal(load_dataset("cifar10", tmp_path).x_train, x_train)


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify: bool) -> None:
    _fake_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _real_md5s(monkeypatch, "cifar10", folder)
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[: batch.stat().st_size // 2])
    with pytest.raises(DataError, match="MD5" if verify else "data_batch_3 is not a readable CIFAR pickle"):
        load_dataset("cifar10", tmp_path, verify=verify)


class _Sneaky:
    def __reduce__(self) -> tuple:
        return (os.getcwd, ())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_Sneaky(), "refusing to load"),
        ([1, 2, 3], "holds a list, not a CIFAR dict"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"must be uint8 \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "must hold 2 integer labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, r"labels must lie in 0\.\.9"),
    ],
)
def test_malformed_pickles_are_reported(tmp_path: Path, content: object, message: str) -> None:
    _fake_cifar10(tmp_path)
    _dump(tmp_path / "cifar-10-batches-py" / "data_batch_1", content)
    with pytest.raises(DataError, match=message):
        load_dataset("cifar10", tmp_path, verify=False)


def test_missing_files_name_what_is_expected_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path)
    message = str(err.value)
    expected = ("cifar-10-batches-py/", "data_batch_1", "batches.meta", "cifar10-jpg", "--data-dir", "SCALELAB_DATA")
    for part in (*expected, "--download"):
        assert part in message
    assert "\n" not in message
    _fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match=r"missing test_batch;"):
        load_dataset("cifar10", tmp_path, verify=False)
    with pytest.raises(DataError, match=r"CIFAR-100 not found.*cifar-100-python/"):
        load_dataset("cifar100", tmp_path)


def test_cifar100_fine_and_coarse_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _fake_cifar100(tmp_path)
    _real_md5s(monkeypatch, "cifar100", tmp_path / "cifar-100-python")
    fine = load_dataset("cifar100", tmp_path)
    coarse = load_dataset("cifar100-coarse", tmp_path)
    assert fine.classes == tuple(f"fine{i}" for i in range(100)) and fine.name == "cifar100"
    assert coarse.classes == tuple(f"coarse{i}" for i in range(20)) and coarse.name == "cifar100-coarse"
    np.testing.assert_array_equal(fine.x_train, expected["x_train"])
    np.testing.assert_array_equal(fine.y_test, expected["fine_test"])
    np.testing.assert_array_equal(coarse.y_train, expected["coarse_train"])


def test_cifar10_3class_keeps_cat_deer_dog_relabelled(tmp_path: Path) -> None:
    x_train, y_train, _, y_test = _fake_cifar10(tmp_path)
    ds = load_dataset("cifar10-3class", tmp_path, verify=False)
    assert ds.name == "cifar10-3class" and ds.classes == ("cat", "deer", "dog")
    keep = np.isin(y_train, [3, 4, 5])
    np.testing.assert_array_equal(ds.x_train, x_train[keep])
    np.testing.assert_array_equal(ds.y_train, y_train[keep] - 3)
    np.testing.assert_array_equal(ds.y_test, y_test[np.isin(y_test, [3, 4, 5])] - 3)


# --- download ------------------------------------------------------------------------------------------------


def _serve_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, md5: str | None = None) -> tuple[np.ndarray, ...]:
    """Build cifar-10-python.tar.gz from fake files and point the URL table at it (file://)."""
    src = tmp_path / "src"
    expected = _fake_cifar10(src)
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    real_md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = dataclasses.replace(cifar.ARCHIVES["cifar10"], url=archive.as_uri(), md5=md5 or real_md5)
    monkeypatch.setitem(cifar.ARCHIVES, "cifar10", spec)
    return expected


def test_download_fetches_verifies_and_unpacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    x_train, _, _, y_test = _serve_archive(tmp_path, monkeypatch)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # exercise the plain stderr progress line
    root = tmp_path / "data"
    ds = load_dataset("cifar10", root, download=True, verify=False)
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    assert "downloading cifar-10-python.tar.gz" in capsys.readouterr().err


def test_download_with_wrong_md5_fails_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve_archive(tmp_path, monkeypatch, md5="0" * 32)
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"expected 0{32}"):
        load_dataset("cifar10", root, download=True)
    assert list(root.iterdir()) == []


def test_unreachable_download_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(cifar.ARCHIVES["cifar10"], url=(tmp_path / "nope.tar.gz").as_uri())
    monkeypatch.setitem(cifar.ARCHIVES, "cifar10", spec)
    with pytest.raises(DataError, match=r"could not download .*--data-dir"):
        load_dataset("cifar10", tmp_path / "data", download=True)
    assert list((tmp_path / "data").iterdir()) == []


def test_archive_escaping_its_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = dataclasses.replace(cifar.ARCHIVES["cifar10"], url=archive.as_uri(), md5=md5)
    monkeypatch.setitem(cifar.ARCHIVES, "cifar10", spec)
    with pytest.raises(DataError, match=r"unsafe entry '\.\./evil\.txt'"):
        load_dataset("cifar10", tmp_path / "data", download=True)
    assert not (tmp_path / "evil.txt").exists()


# --- image folders and their cache ---------------------------------------------------------------------------


def test_image_folder_sorts_classes_and_keeps_exact_pixels(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    expected = _write_folder(root, ("zebra", "cat", "mouse"))
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"imagefolder:{root}")
    assert ds.name == f"imagefolder:{root}" and ds.classes == ("cat", "mouse", "zebra") and ds.image_size == (6, 8)
    _assert_same(ds, expected)


def test_a_class_subset_reads_only_its_folders_labelled_in_the_order_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "pets"
    full = _write_folder(root, ("cat", "dog", "eel"))  # sorted: cat 0, dog 1, eel 2; 3 train, 2 test each
    decoded: list[str] = []
    decode = imagefolder._decode_chunk
    monkeypatch.setattr(imagefolder, "_decode_chunk", lambda paths: decoded.extend(paths) or decode(paths))
    ds = load_image_folder(root, classes=("eel", "cat"), workers=1)
    assert ds.classes == ("eel", "cat") and not [p for p in decoded if "/dog/" in p]
    np.testing.assert_array_equal(ds.x_train, np.concatenate([full["x_train"][6:9], full["x_train"][0:3]]))
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1, 1] and ds.y_test.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataError, match=r"has no class folder cow; it has cat, dog, eel"):
        load_image_folder(root, classes=("cat", "cow"))


def test_second_load_comes_from_cache_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pets"
    expected = _write_folder(root, ("cat", "dog"))
    load_image_folder(root)
    assert len(list((tmp_path / "cache" / "imagefolder").glob("pets-*.npy"))) == 1

    def no_decoding(paths: list[str]) -> np.ndarray:
        raise AssertionError("decoded although cached")

    with monkeypatch.context() as m:
        m.setattr(imagefolder, "_decode_chunk", no_decoding)
        _assert_same(load_image_folder(root), expected)
    changed = np.zeros((6, 8, 3), np.uint8)
    Image.fromarray(changed).save(root / "train" / "dog" / "0001.png")
    np.testing.assert_array_equal(load_image_folder(root).x_train[4], changed)


def test_parallel_decoding_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pets"
    expected = _write_folder(root, ("cat", "dog", "eel"), n_train=4)
    monkeypatch.setattr(imagefolder, "_CHUNK", 3)  # several chunks, so two worker processes share them
    _assert_same(load_image_folder(root, cache=False, workers=2), expected)


def test_interrupted_cache_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pets"
    _write_folder(root, ("cat", "dog"))

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(root)
    assert list((tmp_path / "cache" / "imagefolder").iterdir()) == []


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.choice(np.arange(200, len(data)), size=min(1000, len(data) - 200), replace=False):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _zero_pixels(path: Path) -> None:
    x = np.load(path)
    x[:, :2] = 0
    np.save(path, x)


def _other_array(path: Path) -> None:
    x = np.load(path)
    np.save(path, np.random.default_rng(1).integers(0, 256, x.shape, dtype=np.uint8))


def _garble_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': Fa" + data[50:])


_DAMAGE = {
    "garbage": lambda p: p.write_bytes(b"garbage"),
    "flipped bytes": _flip_bytes,
    "zeroed pixels": _zero_pixels,
    "another array of the same shape": _other_array,
    "garbled header": _garble_header,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "checksum file missing": lambda p: p.with_name(p.name + ".sha256").unlink(),
    "checksum file garbled": lambda p: p.with_name(p.name + ".sha256").write_text("{not json"),
    "checksum of another array": lambda p: p.with_name(p.name + ".sha256").write_text(
        p.with_name(p.name + ".sha256").read_text().replace('"sha256": "', '"sha256": "0')),
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_damaged_cache_is_detected_reported_in_one_line_and_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    root = tmp_path / "pets"
    expected = _write_folder(root, ("cat", "dog"))
    load_image_folder(root)
    cache_file, checksum_file = sorted((tmp_path / "cache" / "imagefolder").iterdir())
    assert checksum_file.name == cache_file.name + ".sha256"
    good = cache_file.read_bytes()
    _DAMAGE[damage](cache_file)
    capsys.readouterr()
    _assert_same(load_image_folder(root), expected)
    said = [line for line in capsys.readouterr().err.splitlines() if str(cache_file) in line]
    assert len(said) == 1 and said[0].endswith("; rebuilding it"), said  # the decoding bar aside
    assert cache_file.read_bytes() == good  # rebuilt, with a checksum that passes again:
    _assert_same(load_image_folder(root), expected)
    assert capsys.readouterr().err == ""


def test_cached_array_round_trips_and_its_checksum_covers_shape_and_dtype(tmp_path: Path) -> None:
    from scalelab.data.cache import array_checksum, load_array, save_array

    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    save_array(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(load_array(tmp_path / "a.npy"), x)
    assert array_checksum(x) != array_checksum(x.reshape(3, 2, 4))
    assert array_checksum(x) != array_checksum(x.astype(np.int8))
    assert array_checksum(x) == array_checksum(x.copy())
    assert load_array(tmp_path / "missing.npy") is None


def _drop_test_dir(root: Path) -> None:
    for p in (root / "test").rglob("*.png"):
        p.unlink()
    for d in (root / "test").iterdir():
        d.rmdir()
    (root / "test").rmdir()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_drop_test_dir, "no test/ inside; expected .*/train/<class>/<image>"),
        (lambda root: (root / "test" / "owl").mkdir(), "different class folders"),
        (lambda root: Image.new("RGB", (9, 9)).save(root / "test" / "dog" / "big.png"), "images differ in size"),
        (lambda root: (root / "train" / "cat" / "0000.png").write_bytes(b"junk"), "cannot decode image .*0000.png"),
        (lambda root: [p.unlink() for p in (root / "train" / "dog").iterdir()], "train/dog holds no images"),
    ],
)
def test_bad_image_folders_are_reported(tmp_path: Path, damage, message: str) -> None:
    root = tmp_path / "pets"
    _write_folder(root, ("cat", "dog"))
    damage(root)
    with pytest.raises(DataError, match=message):
        load_image_folder(root, cache=False)


def test_cifar10_uses_a_cifar10_jpg_folder_in_the_data_root(tmp_path: Path) -> None:
    expected = _write_folder(tmp_path / "cifar10-jpg", CIFAR10_CLASSES, n_train=2, n_test=1, hw=(32, 32))
    ds = load_dataset("cifar10", tmp_path)
    assert ds.name == "cifar10" and ds.source == str(tmp_path / "cifar10-jpg")
    _assert_same(ds, expected)
    three = load_dataset("cifar10-3class", tmp_path)
    assert three.classes == ("cat", "deer", "dog") and three.y_train.tolist() == [0, 0, 1, 1, 2, 2]
    _fake_cifar10(tmp_path)  # the official files win when both are there
    assert load_dataset("cifar10", tmp_path, verify=False).source.endswith("cifar-10-batches-py")


def test_cifar10_jpg_with_other_classes_is_refused(tmp_path: Path) -> None:
    _write_folder(tmp_path / "cifar10-jpg", ("cat", "dog"))
    with pytest.raises(DataError, match="not the 10 CIFAR-10 ones"):
        load_dataset("cifar10", tmp_path)


# --- validation split ----------------------------------------------------------------------------------------


def _numbered_dataset(counts: tuple[int, ...]) -> ImageDataset:
    """Images whose first pixel is their index, so splits can be traced back."""
    n = sum(counts)
    x = np.zeros((n, 2, 2, 3), np.uint8)
    x[:, 0, 0, 0] = np.arange(n)
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    classes = tuple(f"c{i}" for i in range(len(counts)))
    return ImageDataset("numbered", classes, x, y, x[:3].copy(), y[:3].copy(), "test")


def test_validation_split_is_stratified_disjoint_ordered_and_seeded() -> None:
    ds = _numbered_dataset((50, 30, 20))
    s = split_validation(ds, val_fraction=0.2, seed=1)
    assert SPLIT_NAMES == ("train", "val", "test") and s.get("val") is s.val
    assert (s.name, s.classes, s.val_fraction, s.seed) == ("numbered", ds.classes, 0.2, 1)
    assert np.bincount(s.val[1]).tolist() == [10, 6, 4] and np.bincount(s.train[1]).tolist() == [40, 24, 16]
    train_ids, val_ids = s.train[0][:, 0, 0, 0].astype(int), s.val[0][:, 0, 0, 0].astype(int)
    assert sorted([*train_ids, *val_ids]) == list(range(100))
    assert (np.diff(train_ids) > 0).all() and (np.diff(val_ids) > 0).all()
    np.testing.assert_array_equal(ds.y_train[val_ids], s.val[1])
    np.testing.assert_array_equal(s.test[0], ds.x_test)
    np.testing.assert_array_equal(split_validation(ds, 0.2, seed=1).val[0], s.val[0])
    assert not np.array_equal(split_validation(ds, 0.2, seed=2).val[0], s.val[0])


def test_a_training_share_is_stratified_seeded_and_leaves_the_validation_split_alone() -> None:
    ds = _numbered_dataset((50, 30, 20))
    full, part = split_validation(ds, 0.2, seed=1), split_validation(ds, 0.2, seed=1, train_fraction=0.25)
    assert part.train_fraction == 0.25 and np.bincount(part.train[1]).tolist() == [10, 6, 4]
    np.testing.assert_array_equal(part.val[0], full.val[0])
    part_ids, full_ids = (s.train[0][:, 0, 0, 0].astype(int) for s in (part, full))
    assert set(part_ids) <= set(full_ids) and (np.diff(part_ids) > 0).all()
    again = split_validation(ds, 0.2, seed=1, train_fraction=0.25).train[0]
    np.testing.assert_array_equal(again, part.train[0])
    assert not np.array_equal(split_validation(ds, 0.2, seed=2, train_fraction=0.25).train[0], part.train[0])
    for bad, message in ((0.0, r"train_fraction must be in \(0, 1\], got 0.0"), (1.5, "got 1.5"),
                         (0.01, "train_fraction 0.01 leaves class 'c0' no training image")):
        with pytest.raises(DataError, match=message):
            split_validation(ds, 0.2, seed=1, train_fraction=bad)


@pytest.mark.parametrize(("fraction", "message"), [
    (1.0, r"val_fraction must be in \(0, 1\), got 1.0"), (-0.1, "val_fraction must be in"),
    (0.0, r"must be in \(0, 1\), got 0.0; .*cannot be empty"), (float("nan"), "got nan"),
    (float("inf"), "got inf"), ("0.1", r"val_fraction must be a number, got '0.1' \(str\)"),
    (True, "val_fraction must be a number"),
    (0.6, "leaves no training image of class 'c1'"),  # 0.6 of its one image is all of it
    (0.05, r"gives class 'c0' no validation image \(5 training images\); use at least 0.11 \(the smallest"),
])
def test_bad_validation_settings_are_reported(fraction, message) -> None:
    with pytest.raises(DataError, match=message) as info:
        split_validation(_numbered_dataset((5, 1)) if fraction == 0.6 else _numbered_dataset((5, 8)), fraction)
    assert "\n" not in str(info.value)


def test_every_class_gets_a_validation_image_at_the_smallest_fraction_suggested() -> None:
    ds = _numbered_dataset((5, 8))
    with pytest.raises(DataError, match="use at least 0.11"):
        split_validation(ds, 0.1)  # round(0.5) is 0: class c0 would get none
    assert np.bincount(split_validation(ds, 0.11).val[1]).tolist() == [1, 1]
    with pytest.raises(DataError, match="unknown split 'dev'"):
        split_validation(ds, 0.2).get("dev")
    with pytest.raises(DataError, match="seed must be a non-negative integer, got -1"):
        split_validation(ds, 0.2, seed=-1)


# --- augmentation --------------------------------------------------------------------------------------------


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_affine_with_zero_ranges_is_the_identity() -> None:
    x = torch.rand(4, 3, 16, 12)
    out = random_affine(x, _gen(), rotation=0, shift=0, zoom=0, flip=False)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_random_affine_flips_about_half_of_the_images() -> None:
    x = torch.rand(32, 3, 8, 8)
    out = random_affine(x, _gen(), rotation=0, shift=0, zoom=0, flip=True)
    same = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    mirrored = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    assert (same | mirrored).all() and 4 <= int(mirrored.sum()) <= 28


def test_random_affine_draws_per_image_in_one_grid_sample_and_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = F.grid_sample
    monkeypatch.setattr(augment.F, "grid_sample", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.rand(1, 3, 16, 16).expand(8, -1, -1, -1).contiguous()
    out = random_affine(x, _gen(3))
    assert len(calls) == 1 and out.shape == x.shape and out.dtype == x.dtype
    assert all(not torch.allclose(out[i], out[j]) for i in range(8) for j in range(i))
    torch.testing.assert_close(random_affine(x, _gen(3)), out)
    assert not torch.allclose(random_affine(x, _gen(4)), out)


def _centroid(img: torch.Tensor) -> torch.Tensor:
    """(row, col) of an image's brightness, measured from the image centre in pixels."""
    h, w = img.shape[-2:]
    rows = torch.arange(h) + 0.5 - h / 2
    cols = torch.arange(w) + 0.5 - w / 2
    mass = img.sum(0)
    return torch.stack([(mass.sum(1) * rows).sum(), (mass.sum(0) * cols).sum()]) / mass.sum()


@pytest.mark.parametrize("hw", [(32, 32), (24, 48)])
def test_random_affine_rotates_and_shifts_in_pixel_space(hw: tuple[int, int]) -> None:
    h, w = hw
    x = torch.zeros(16, 1, h, w)
    x[:, :, h // 2 - 2 : h // 2 + 2, w // 2 + 6 : w // 2 + 10] = 1  # a block 8 px right of the centre
    rotated = random_affine(x, _gen(), rotation=40, shift=0, zoom=0, flip=False, padding_mode="zeros")
    shifted = random_affine(x, _gen(), rotation=0, shift=0.1, zoom=0, flip=False, padding_mode="zeros")
    for r, s in zip(rotated, shifted, strict=True):
        (ry, rx), (sy, sx) = _centroid(r), _centroid(s)
        assert abs(torch.hypot(ry, rx) - 8) < 0.5  # a rotation keeps the distance to the centre
        assert abs(torch.rad2deg(torch.atan2(ry, rx))) <= 40.5
        assert abs(sy) <= 0.1 * h + 0.5 and abs(sx - 8) <= 0.1 * w + 0.5


def test_random_affine_zooms_each_axis_independently() -> None:
    x = torch.zeros(16, 1, 32, 32)
    x[:, :, 12:20, 12:20] = 1  # an 8x8 block in the centre
    out = random_affine(x, _gen(), rotation=0, shift=0, zoom=0.3, flip=False, padding_mode="zeros")
    mass = out[:, 0]
    coords = torch.arange(32) + 0.5 - 16
    sizes = []
    for profile in (mass.sum(1), mass.sum(2)):  # along the columns (width), then the rows (height)
        p = profile / profile.sum(1, keepdim=True)
        sizes.append((12 * (p * coords**2).sum(1)).sqrt())  # the width of a uniform block with this variance
    width, height = sizes
    low, high = 8 / 1.3 - 0.3, 8 / 0.7 + 0.3  # zoom factors 1.3 and 0.7, plus some bilinear blur
    assert ((width > low) & (width < high) & (height > low) & (height < high)).all()
    assert (width / height - 1).abs().max() > 0.1


def test_random_crop_flip_returns_crops_of_the_padded_batch() -> None:
    x = torch.rand(1, 3, 8, 8).expand(12, -1, -1, -1).contiguous()
    out = random_crop_flip(x, _gen(), padding=2)
    padded = F.pad(x[0], (2, 2, 2, 2))
    crops = [padded[:, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
    crops += [c.flip(-1) for c in crops]
    for img in out:
        assert any(torch.equal(img, c) for c in crops)
    assert len({img.sum().item() for img in out}) > 3
    torch.testing.assert_close(random_crop_flip(x, _gen(), padding=2), out)
    torch.testing.assert_close(random_crop_flip(x, _gen(), padding=0, flip=False), x)


def test_resize_batch_shrinks_with_antialiasing_and_grows() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert resize_batch(x, 16) is x
    assert resize_batch(x, 24).shape == (2, 3, 24, 24) and resize_batch(x, (8, 12)).shape == (2, 3, 8, 12)
    noise = torch.rand(1, 3, 64, 64, generator=_gen())
    small = resize_batch(noise, 8)
    # antialiasing averages ~8x8 input pixels per output pixel; plain bilinear only 2x2 (std near 0.14)
    assert small.shape == (1, 3, 8, 8) and small.std() < 0.08


def test_augmentation_settings_are_checked() -> None:
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(DataError, match="zoom must be between"):
        random_affine(x, _gen(), zoom=1.5)
    with pytest.raises(DataError, match="padding_mode must be"):
        random_affine(x, _gen(), padding_mode="wrap")
    with pytest.raises(DataError, match="padding must be between 0 and 7"):
        random_crop_flip(x, _gen(), padding=8)
    with pytest.raises(DataError, match="resize size"):
        resize_batch(x, 0)
    with pytest.raises(ValueError, match="float"):
        resize_batch(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 4)


# --- the script that makes cifar10-mini ----------------------------------------------------------------------


def test_make_cifar10_mini_takes_the_first_images_of_each_class(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_cifar10_mini", REPO / "scripts" / "make_cifar10_mini.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    expected = _write_folder(tmp_path / "src", CIFAR10_CLASSES, n_train=3, n_test=2, hw=(32, 32))
    outs = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for out in outs:
        args = [str(tmp_path / "src"), "--train-per-class", "2", "--test-per-class", "1", "--out", str(out)]
        assert script.main(args) == 0
    with np.load(outs[0]) as a, np.load(outs[1]) as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
        first_two = np.arange(30).reshape(10, 3)[:, :2].ravel()
        np.testing.assert_array_equal(a["x_train"], expected["x_train"][first_two])
        np.testing.assert_array_equal(a["y_train"], np.repeat(np.arange(10), 2))
        np.testing.assert_array_equal(a["x_test"], expected["x_test"][::2])
        assert tuple(a["classes"]) == CIFAR10_CLASSES and "first 2 training and 1 test" in str(a["provenance"])
    assert script.main([str(tmp_path / "src"), "--train-per-class", "4", "--out", str(outs[0])]) == 1


def test_real_cifar10_jpg_three_class_subset(tmp_path, monkeypatch):
    """The seed's cat/deer/dog task read from the real CIFAR-10 image folder (CI sets SCALELAB_TEST_DATA)."""

    root = os.environ.get("SCALELAB_TEST_DATA")
    if not root:
        pytest.skip("set SCALELAB_TEST_DATA to a folder holding cifar10-jpg/ (CI does)")
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path))
    ds = load_dataset("cifar10-3class", root)
    assert ds.classes == ("cat", "deer", "dog")
    assert ds.x_train.shape == (15_000, 32, 32, 3) and ds.x_test.shape == (3_000, 32, 32, 3)
    assert np.bincount(ds.y_train).tolist() == [5_000] * 3
    assert 60 < ds.x_train.mean() < 200  # real pixels, not a blank decode
