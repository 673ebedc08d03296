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
    """Exactly one of ``multiple`` (of a reference cost) and ``amount`` (absolute) is set."""

    multiple: float | None = None
    amount: float | None = None

    def amount_for(self, reference: float) -> float:
        """The absolute target when the reference network costs ``reference``."""
        return self.amount if self.amount is not None else self.multiple * reference

    def multiple_of(self, reference: float) -> float:
        """The target as a multiple of ``reference``."""
        return self.multiple if self.multiple is not None else self.amount / reference


def parse_target(text: str, option: str, unit: str = "") -> Target:
    """'2x' -> a multiple; '800M', '1.2G', '5e8' -> an amount; with ``unit='ms'`` a trailing 'ms' is
    allowed ('12ms')."""
    clean = str(text).strip()
    try:
        if clean.lower().endswith("x"):
            target = Target(multiple=float(clean[:-1]))
        else:
            if unit and clean.lower().endswith(unit):
                clean = clean[: -len(unit)]
            target = Target(amount=parse_quantity(clean, option))
    except (ValueError, ScalelabError) as exc:
        raise SearchError(f"cannot read {option} '{text}'; write a multiple of the baseline such as 2x, "
                          f"or an absolute amount such as 800M or 1.2G") from exc
    value = target.multiple if target.multiple is not None else target.amount
    if not (math.isfinite(value) and value > 0):
        raise SearchError(f"{option} must be positive, got '{text}'")
    return target


def reward(accuracy: Any, cost: Any, target: float, w: float) -> Any:
    """MnasNet's reward ACC(m) * (cost(m) / T)^w: with w < 0 a network twice the target cost must be
    2^-w times as accurate to score the same. Numbers or arrays (the report scores whole columns)."""
    return accuracy * (cost / target) ** w
