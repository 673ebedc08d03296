"""Writing files so that a crash never leaves half of one, and keeping user-given names inside a folder.

Every file scalelab writes goes through :func:`write_text_atomic` or :func:`write_bytes_atomic`: the data
goes to a temporary file in the same directory, is flushed to disk, and is then renamed over the target
(``os.replace``, atomic on POSIX and Windows). A reader, or a run killed at any moment, sees either the old
file or the complete new one, never a 0-byte or truncated file.

:func:`confined` turns a name a user gave (a study name, an output file) into a path under a root folder and
refuses one that would land outside it (``../../x``, ``/tmp/x``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

from scalelab.errors import ScalelabError

PathLike = Union[str, "os.PathLike[str]"]


class WriteError(ScalelabError):
    """A file could not be written; ``path`` and ``reason`` (the OS's words) are kept for callers."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason = Path(path), reason


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every OS or file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. The parent directory is
    created if missing. ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaulting to UTF-8).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), got mode {mode!r}")
    target = Path(path)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(target, _describe(exc)) from None
    tmp = Path(tmp_name)
    try:
        if mode == "w":
            handle = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline="")
        else:
            handle = os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # mkstemp makes the file 0600; give it the permissions an ordinary open() would have.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        except OSError:
            pass
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise WriteError(target, _describe(exc)) from None
        raise
    _fsync_dir(parent)


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename; returns the path."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` via a temporary file and a rename; returns the path."""
    return write_bytes_atomic(path, text.encode(encoding))


def confined(root: PathLike, name: PathLike, *, what: str = "name") -> Path:
    """``root / name``, refused with a one-line error when ``name`` would land outside ``root``.

    Absolute names, ``..`` components that climb out, and symlinks inside ``root`` that point out of it
    are all refused. ``what`` names the thing in the message (``"study name"``, ``"--out"``).
    """
    text = os.fspath(name)
    if not text or text.strip() == "":
        raise ScalelabError(f"{what} must not be empty")
    if "\x00" in text:
        raise ScalelabError(f"{what} {text!r} contains a NUL character")
    if os.path.isabs(text) or Path(text).anchor:
        raise ScalelabError(f"{what} {text!r} is an absolute path; give a name inside {root}")
    base = Path(root)
    candidate = base / text
    base_real = Path(os.path.realpath(base))
    real = Path(os.path.realpath(candidate))
    if real != base_real and base_real not in real.parents:
        raise ScalelabError(f"{what} {text!r} would be written outside {root}; give a name inside it")
    if real == base_real:
        raise ScalelabError(f"{what} {text!r} names {root} itself; give a file name inside it")
    return Path(os.path.normpath(candidate))


def check_writable_file(path: PathLike, *, what: str = "output file") -> Path:
    """Check, before any work, that ``path`` can be written: its folder exists, is a folder, is writable.

    Raises a one-line :class:`ScalelabError` otherwise; a directory given as the file is refused too.
    """
    target = Path(path)
    where = f"cannot write {what} '{target}'"
    if target.is_dir():
        raise ScalelabError(f"{where}: it is a folder; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise ScalelabError(f"{where}: folder '{parent}' does not exist; create it first")
    if not parent.is_dir():
        raise ScalelabError(f"{where}: '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScalelabError(f"{where}: folder '{parent}' is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        # os.replace would still succeed in a writable folder, but a read-only file signals intent.
        raise ScalelabError(f"{where}: the file is read-only")
    return target
