"""Timings that hold on a busy machine: compared loops run alternately, figures quoted as per-round ratios.

Run one after the other, two loops see different loads (other work starts or stops between them) and their
ratio moves by whatever the load did. Run alternately in rounds (A B, B A, A B, ...: the order flips every
round, so a load that rises or falls steadily does not favour the loop that goes first), both loops of a
round share its load, and the ratio within a round cancels most of it. The figure to quote is the median
of the per-round ratios; their range (lowest to highest) says how far it can be trusted: wider than
:data:`WIDE_SPREAD` of the median and a warning says so.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scalelab.errors import ScalelabError

#: A ratio whose rounds span more than this share of its median (``(highest - lowest) / median``) is
#: flagged as too spread to quote.
WIDE_SPREAD = 0.20

DEFAULT_ROUNDS = 5


def check_rounds(rounds: int, flag: str = "--rounds") -> int:
    if rounds < 1:
        raise ScalelabError(f"{flag} must be at least 1; got {rounds}")
    return rounds


def alternate(loops: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each loop's figure in every round, the loops called in turn, their order reversed every other round."""
    check_rounds(rounds)
    names = list(loops)
    figures: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            figures[name].append(float(loops[name]()))
    return figures


@dataclass(frozen=True)
class Spread:
    """One figure measured in several rounds: its median and its range over the rounds."""

    values: tuple[float, ...]

    @classmethod
    def ratio(cls, numerator: Sequence[float], denominator: Sequence[float]) -> Spread:
        """The per-round ratio of two loops' figures (same round, same load)."""
        if len(numerator) != len(denominator) or not numerator:
            raise ValueError("a ratio needs the same number of rounds, at least one, on both sides")
        return cls(tuple(a / b for a, b in zip(numerator, denominator)))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def relative_spread(self) -> float:
        """(highest - lowest) / median: 0.1 means the rounds span 10% of the median."""
        return (self.high - self.low) / abs(self.median) if self.median else float("inf")

    @property
    def wide(self) -> bool:
        return self.relative_spread > WIDE_SPREAD

    def scaled(self, factor: float) -> Spread:
        """The same rounds in another unit (100: a fraction as a percentage)."""
        return Spread(tuple(factor * v for v in self.values))

    def text(self, unit: str, fmt: str = ".2f") -> str:
        """``2.21x median of 5 rounds (range 1.95x to 2.40x, 20% of the median)``; ``unit`` follows every
        figure."""
        if len(self.values) == 1:
            return f"{self.median:{fmt}}{unit} in 1 round (no spread measured)"
        return (f"{self.median:{fmt}}{unit} median of {len(self.values)} rounds (range {self.low:{fmt}}{unit} "
                f"to {self.high:{fmt}}{unit}, {100 * self.relative_spread:.0f}% of the median)")

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "low": self.low, "high": self.high,
                "relative_spread": self.relative_spread, "wide": self.wide, "rounds": list(self.values)}


def warning(what: str, spread: Spread) -> str | None:
    """One line when ``spread`` is too wide to quote, else None."""
    if not spread.wide:
        return None
    return (f"warning: {what} varied {100 * spread.relative_spread:.0f}% across rounds (more than "
            f"{100 * WIDE_SPREAD:.0f}% of its median): the machine's load changed under the benchmark; "
            "re-run it when the machine is quieter, or with more --rounds")


@dataclass(frozen=True)
class Machine:
    """What shares the CPU with a benchmark: load averages (processes running or waiting, averaged over
    1, 5 and 15 minutes, this benchmark included once it runs), cores and torch's thread count."""

    load_1min: float
    load_5min: float
    load_15min: float
    cores: int
    torch_threads: int

    @classmethod
    def now(cls) -> Machine:
        try:
            loads = os.getloadavg()
        except OSError:  # not every platform keeps load averages
            loads = (float("nan"),) * 3
        import torch

        from scalelab.device import available_cores

        return cls(*loads, cores=available_cores(), torch_threads=torch.get_num_threads())

    def load_text(self) -> str:
        return f"{self.load_1min:.2f} / {self.load_5min:.2f} / {self.load_15min:.2f} processes"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
