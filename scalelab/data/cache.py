"""Where scalelab keeps downloads and decoded arrays, and how it writes and checks them.

Decoded arrays are cached as ``.npy`` files with a checksum file beside them (``<name>.npy.sha256``: the
SHA-256 of the array's bytes, its shape and dtype). Loading recomputes it; a file that fails (flipped bytes,
zeroed pixels, another array of the same shape, a garbled header, a truncated file, a missing checksum) is
reported in one line on stderr and the caller rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

CHECKSUM_SUFFIX = ".sha256"
_CHECKSUM_FORMAT = 1


def cache_dir() -> Path:
    """``$SCALELAB_CACHE`` if set, else ``~/.cache/scalelab``."""
    env = os.environ.get("SCALELAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scalelab"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` by calling ``write`` on a temporary file in the same folder, then renaming it.

    An interrupted write (Ctrl-C, full disk) leaves either the old file or none, never a partial one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checksum_path(path: Path) -> Path:
    """The checksum file kept beside the cached array ``path``."""
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def array_checksum(x: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order): equal only for equal arrays."""
    digest = hashlib.sha256(f"{x.dtype.str}\n{tuple(int(n) for n in x.shape)}\n".encode())
    digest.update(memoryview(np.ascontiguousarray(x)).cast("B"))
    return digest.hexdigest()


def save_array(path: Path, x: np.ndarray) -> None:
    """Write ``x`` to ``path`` (``.npy``) and its checksum beside it, both atomically.

    The old checksum file is removed first and the new one written last, so a kill in between leaves an
    array without a checksum, which :func:`load_array` refuses, never an array with a stale one.
    """
    record = json.dumps(dict(format=_CHECKSUM_FORMAT, sha256=array_checksum(x), dtype=x.dtype.str,
                             shape=[int(n) for n in x.shape])) + "\n"
    checksum_path(path).unlink(missing_ok=True)
    atomic_write(path, lambda f: np.save(f, x, allow_pickle=False))
    atomic_write(checksum_path(path), lambda f: f.write(record.encode()))


def load_array(path: Path, *, what: str = "cache") -> np.ndarray | None:
    """The array cached at ``path`` if it is there and passes its checksum, else ``None``.

    A missing file is silently ``None``; a file that is there but fails any check prints one line on
    stderr naming it and what failed (the caller then rebuilds it).
    """
    if not path.is_file():
        return None
    problem = _verify(path)
    if isinstance(problem, np.ndarray):
        return problem
    print(f"{what} {path} {problem}; rebuilding it", file=sys.stderr)
    return None


def _verify(path: Path) -> np.ndarray | str:
    try:
        record = json.loads(checksum_path(path).read_text())
        expected, shape, dtype = record["sha256"], tuple(record["shape"]), np.dtype(record["dtype"])
    except FileNotFoundError:
        return "has no checksum file beside it"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"has an unreadable checksum file ({type(exc).__name__})"
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001  numpy's header parser raises many kinds (tokenize errors too)
        reason = "".join(c if c.isprintable() else "?" for c in str(exc).strip()) or type(exc).__name__
        if "pickle" in reason:  # numpy's words for a header that does not describe a plain array
            reason = "its header does not describe a plain array"
        return f"is not a readable .npy array ({reason if len(reason) <= 120 else reason[:117] + '...'})"
    if not isinstance(x, np.ndarray) or x.dtype != dtype or x.shape != shape:
        return (f"holds an array of shape {getattr(x, 'shape', '?')} and dtype {getattr(x, 'dtype', '?')}, "
                f"its checksum file says {shape} {dtype}")
    if array_checksum(x) != expected:
        return "fails its checksum (its content changed since it was written)"
    return x
