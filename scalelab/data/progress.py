"""A progress bar on stderr for long data work (downloads, decoding image folders)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    """Counts ``update(n)`` calls towards ``total`` (``None`` when unknown). Use as a context manager."""

    def __init__(self, desc: str, total: int | None, unit: str = "it") -> None:
        self._bar = tqdm(desc=desc, total=total, unit=unit, unit_scale=True, file=sys.stderr, leave=True)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
