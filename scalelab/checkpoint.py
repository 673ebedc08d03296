"""A training's state on disk, so that a trial paused at a rung of successive halving (or interrupted)
continues where it stopped instead of training again from the start.

A checkpoint is written whole to a temporary file and moved into place, so a crash while saving leaves
the previous one. It carries a fingerprint of what it trains (network, recipe, training images): a file
left by another training is never continued from.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import torch


def fingerprint(*parts: Any) -> str:
    """A digest of ``parts`` (dataclasses as dicts, numbers, strings), stable across processes."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def save(path: str | Path, state: dict[str, Any], mark: str) -> None:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) under fingerprint ``mark``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"fingerprint": mark, "state": state}, partial)
    os.replace(partial, path)


def load(path: str | Path, mark: str) -> dict[str, Any] | None:
    """The state saved at ``path`` under fingerprint ``mark``; None when there is none, or it is of
    another training, or it cannot be read (said on stderr: training starts over)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: what it held is lost either way
        print(f"warning: checkpoint {path} could not be read ({type(exc).__name__}); training starts over",
              file=sys.stderr, flush=True)
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != mark:
        return None
    return saved["state"]


def remove(path: str | Path) -> None:
    """Delete a checkpoint that is no longer needed (the training ended for good)."""
    Path(path).unlink(missing_ok=True)
