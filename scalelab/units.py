"""Numbers with units: formatting for people and parsing of user-given quantities."""

from __future__ import annotations

import re

from scalelab.errors import ScalelabError

_SI = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """``si(398085664, 'multiply-adds')`` -> '398 M multiply-adds'."""
    for prefix, scale in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix} {unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def parse_quantity(text: str, what: str = "value") -> float:
    """'800M' -> 8e8, '1.2G' -> 1.2e9, '5e8' -> 5e8 (K, M, G, T accepted, any case)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)\s*", text)
    if not match:
        raise ScalelabError(f"cannot read {what} '{text}'; write a number with an optional K, M, G "
                            "or T suffix, such as 800M or 1.2G")
    number, prefix = match.groups()
    return float(number) * dict((p, s) for p, s in _SI).get(prefix.upper(), 1.0)
