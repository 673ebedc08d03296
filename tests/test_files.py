"""Atomic writes and names confined to a folder (scalelab.files)."""

from __future__ import annotations

import os

import pytest

from scalelab.errors import ScalelabError
from scalelab.files import WriteError, check_writable_file, confined, write_bytes_atomic, write_text_atomic


def test_atomic_write_creates_the_folder_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a" / "b" / "page.html"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second, longer")
    assert path.read_text() == "second, longer"
    assert os.listdir(path.parent) == ["page.html"]
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()  # an ordinary file, not mkstemp's 0600
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_text_atomic(path, "old")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(WriteError, match=r"cannot write .*summary.json: No space left on device") as info:
        write_text_atomic(path, "new")
    monkeypatch.undo()
    assert info.value.reason == "No space left on device" and isinstance(info.value, ScalelabError)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]


def test_writing_below_a_file_is_one_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(WriteError, match="cannot write"):
        write_text_atomic(tmp_path / "afile" / "x.json", "{}")


@pytest.mark.parametrize("name", ["../x", "../../x", "a/../../x", "/tmp/x", "..", ".", "", " ", "a\x00b"])
def test_names_that_leave_the_folder_are_refused(tmp_path, name):
    with pytest.raises(ScalelabError) as info:
        confined(tmp_path / "runs", name, what="study name")
    assert "study name" in str(info.value) and "\n" not in str(info.value)


def test_names_inside_the_folder_are_kept_and_symlinks_out_are_refused(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    assert confined(root, "grid-2x") == root / "grid-2x"
    assert confined(root, "a/b/../c.json") == root / "a" / "c.json"
    assert confined(root, "x..y") == root / "x..y"  # dots inside a name are fine
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(ScalelabError, match="outside"):
        confined(root, "out/escaped")


def test_check_writable_file_says_what_is_wrong(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = {tmp_path / "missing" / "x.csv": "does not exist", tmp_path: "it is a folder",
             tmp_path / "afile" / "x.csv": "is a file, not a folder"}
    for path, message in cases.items():
        with pytest.raises(ScalelabError, match=message):
            check_writable_file(path, what="--csv")
    assert check_writable_file(tmp_path / "ok.csv") == tmp_path / "ok.csv"
