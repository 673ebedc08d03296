"""Cost targets, given as a multiple of a reference network ("2x") or as an absolute amount ("800M"),
and the baseline search's soft-constrained reward."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scalelab.errors import ScalelabError, SearchError
from scalelab.units import parse_quantity


@dataclass(frozen=True)
class Target:
    """Exactly one of ``multiple`` (of a reference cost) and ``amount`` (absolute) is set; ``unit`` is
    'ms' for a latency given in milliseconds, else empty; ``text`` is what the user wrote (how settings
    store it)."""

    multiple: float | None = None
    amount: float | None = None
    unit: str = ""
    text: str = ""

    def __str__(self) -> str:
        return self.text

    def amount_for(self, reference: float) -> float:
        """The absolute target when the reference network costs ``reference``."""
        return self.amount if self.amount is not None else self.multiple * reference

    def multiple_of(self, reference: float) -> float:
        """The target as a multiple of ``reference``."""
        return self.multiple if self.multiple is not None else self.amount / reference


def parse_target(text: str | float | Target, option: str) -> Target:
    """'2x' -> a multiple; '800M', '1.2G', '5e8' -> an amount; '12ms' -> an amount in milliseconds."""
    if isinstance(text, Target):
        return text
    clean = str(text).strip()
    try:
        if clean.lower().endswith("x"):
            target = Target(multiple=float(clean[:-1]), text=clean)
        elif clean.lower().endswith("ms"):
            target = Target(amount=parse_quantity(clean[:-2], option), unit="ms", text=clean)
        else:
            target = Target(amount=parse_quantity(clean, option), text=clean)
    except (ValueError, ScalelabError) as exc:
        raise SearchError(f"cannot read {option} '{text}'; write a multiple of the base network such as 2x, "
                          f"or an absolute amount such as 800M, 1.2G or 5ms") from exc
    value = target.multiple if target.multiple is not None else target.amount
    if not (math.isfinite(value) and value > 0):
        raise SearchError(f"{option} must be positive, got '{text}'")
    return target


def reward(accuracy: Any, cost: Any, target: float, w: float) -> Any:
    """MnasNet's reward ACC(m) * (cost(m) / T)^w: with w < 0 a network twice the target cost must be
    2^-w times as accurate to score the same. Numbers or arrays (the report scores whole columns)."""
    return accuracy * (cost / target) ** w
