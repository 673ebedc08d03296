"""Points: the networks an enumerated study (grid, family, sweep, compare) trains, each with the trial
attributes that say where it sits (dimension, multipliers, coefficients), and their deduplication."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scalelab.arch.spec import NetworkSpec

POINT_ATTRS = ("dimension", "depth", "width", "resolution", "alpha", "beta", "gamma", "phi")
"""Recorded on every trial of an enumerated study; None where not applicable."""


@dataclass(frozen=True)
class Point:
    spec: NetworkSpec
    attrs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "attrs": self.attrs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Point:
        return cls(NetworkSpec.from_dict(data["spec"]), dict(data["attrs"]))


def point(spec: NetworkSpec, **attrs: Any) -> Point:
    """A point whose unset :data:`POINT_ATTRS` are None."""
    return Point(spec, {**dict.fromkeys(POINT_ATTRS), **attrs})


def network_key(spec: NetworkSpec) -> str:
    """The spec's JSON without its name: two specs are the same network when their keys match."""
    d = spec.to_dict()
    d.pop("name")
    return json.dumps(d, sort_keys=True)


def dedupe(points: list[Point]) -> list[Point]:
    """One point per distinct network, in first-seen order; the attributes of the points it stands for
    go into its ``aliases`` (a list, empty when unique)."""
    kept: dict[str, Point] = {}
    for p in points:
        key = network_key(p.spec)
        if key in kept:
            kept[key].attrs["aliases"].append(p.attrs)
        else:
            kept[key] = Point(p.spec, {**p.attrs, "aliases": []})
    return list(kept.values())
