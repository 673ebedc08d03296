"""A progress line on stderr: tqdm when it is installed, else a plain line rewritten in place."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts ``update(n)`` calls towards ``total`` (``None`` when unknown). Use as a context manager."""

    def __init__(self, desc: str, total: int | None, unit: str = "it") -> None:
        self._desc, self._total, self._unit = desc, total, unit
        self._done, self._last = 0, 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(desc=desc, total=total, unit=unit, unit_scale=True, file=sys.stderr, leave=True)

    def update(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(n)
        elif time.monotonic() - self._last >= 0.2:
            self._write()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._write()
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> None:
        self._last = time.monotonic()
        done = f"{self._done:,} {self._unit}"
        if self._total:
            done += f" / {self._total:,} ({100 * self._done / self._total:.0f}%)"
        sys.stderr.write(f"\r{self._desc}: {done}")
        sys.stderr.flush()
