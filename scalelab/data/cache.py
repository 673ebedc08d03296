"""Where scalelab keeps downloads and decoded arrays, and how it writes them safely."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
