"""Study kinds: one module each, behind the :class:`StudyKind` protocol, found through :func:`get_kind`.

A kind says what its ``[search]`` settings are, works out the study's :class:`Plan` once (the networks
an enumerated kind trains, or a search's targets and caps), chooses each trial's network, scores it,
summarises the finished study and names the report sections its page shows. Nothing outside this
package tells kinds apart by name. To add a kind, add a module here that defines a class implementing
the protocol (usually a subclass of :class:`scalelab.search.kinds.enumerated.EnumeratedKind`) decorated
with :func:`register`, and import it at the bottom of this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import optuna
import torch

from scalelab.arch.spec import NetworkSpec
from scalelab.errors import SearchError
from scalelab.search.record import Point, TrialCost, TrialRecord

if TYPE_CHECKING:
    from scalelab.search.config import StudyConfig
    from scalelab.search.summary import NetworkResult, Summary

Values = float | tuple[float, float]


@dataclass(frozen=True)
class Planned:
    """One network an enumerated study trains, priced once when the study is planned."""

    spec: NetworkSpec
    point: Point
    cost: TrialCost

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "point": self.point.to_dict(), "cost": vars(self.cost)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Planned:
        return cls(NetworkSpec.from_dict(d["spec"]), Point.from_dict(d["point"]), TrialCost(**d["cost"]))


@dataclass(frozen=True)
class Plan:
    """What a study trains, worked out once and stored with it. ``base`` is the network the study
    starts from (None for comparisons); ``networks`` are an enumerated study's, one per distinct network;
    ``facts`` are the kind's own derived amounts (a search's absolute target and caps, a grid's K and
    every candidate with its predicted and measured FLOPs ratio)."""

    base: NetworkSpec | None
    base_flops: int | None
    networks: tuple[Planned, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict() if self.base else None, "base_flops": self.base_flops,
                "networks": [n.to_dict() for n in self.networks], "facts": self.facts}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(NetworkSpec.from_dict(d["base"]) if d.get("base") else None, d.get("base_flops"),
                   tuple(Planned.from_dict(n) for n in d.get("networks", ())), dict(d.get("facts", {})))


class StudyKind(Protocol):
    """What every study kind provides (see the module docstring)."""

    name: ClassVar[str]
    title: ClassVar[str]
    """What the kind answers, for people (report pages)."""
    settings: ClassVar[type]
    """The dataclass of the study file's ``[search]`` table."""
    report_sections: ClassVar[tuple[str, ...]]
    """Names of the sections of :mod:`scalelab.report.site` its study page shows, in order."""
    enumerated: ClassVar[bool]
    """True when the plan lists every network (queued once each); False for a sampled search."""
    replicable: ClassVar[bool]
    """Whether the study can train every network with several seeds (``seeds``)."""
    settles: ClassVar[bool]
    """Whether it asks a question that more seeds can settle, so that ``settle_after`` applies."""
    growable: ClassVar[tuple[str, ...]]
    """``[search]`` lists a resumed study may extend (each a superset of the stored one): the networks they
    add are planned and queued, and those already planned keep their place and their trials."""

    def plan(self, config: StudyConfig, num_classes: int, device: torch.device) -> Plan: ...

    def directions(self, config: StudyConfig) -> list[str]: ...

    def metric_names(self, config: StudyConfig) -> list[str]: ...

    def pruner(self, config: StudyConfig) -> optuna.pruners.BasePruner: ...

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler: ...

    def queue(self, config: StudyConfig, plan: Plan) -> list[dict[str, Any]]:
        """Optuna parameters of each planned network, in plan order (empty for a sampled search)."""

    def network(self, trial: optuna.Trial, config: StudyConfig, plan: Plan) -> tuple[NetworkSpec, Point | None,
                                                                                      TrialCost | None]:
        """The trial's network, where it sits and its cost when already known."""

    def measures_latency(self, config: StudyConfig) -> bool:
        """Whether each trial times batch-1 inference."""

    def over_cap(self, config: StudyConfig, plan: Plan, spec: NetworkSpec, cost: TrialCost,
                 device: torch.device) -> tuple[TrialCost, str | None]:
        """The cost with anything a cap needs measured, and why the network may not train (None if it may)."""

    def values(self, config: StudyConfig, plan: Plan, accuracy: float, cost: TrialCost) -> Values: ...

    def total(self, config: StudyConfig, plan: Plan) -> int:
        """How many trials the study finishes."""

    def best(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> TrialRecord | None:
        """The study's best network by the kind's one definition (None when nothing finished)."""

    def settled(self, config: StudyConfig, plan: Plan, records: list[TrialRecord]) -> str | None:
        """Why the replicates not yet trained are not needed (the study's question is answered), or None."""

    def budget_check_networks(self, results: list[NetworkResult]) -> list[NetworkResult]:
        """Of a replicable kind: the networks a budget check trains again, those its answer rests on."""

    def name_parts(self, config: StudyConfig) -> list[str]:
        """Words of the default study name."""

    def summary(self, study: optuna.Study, config: StudyConfig, plan: Plan, records: list[TrialRecord],
                out_dir: Path, out: str | None) -> Summary: ...


_REGISTRY: dict[str, StudyKind] = {}


def register(cls: type) -> type:
    """Class decorator: make the kind available under ``cls.name``."""
    _REGISTRY[cls.name] = cls()
    return cls


def get_kind(name: object) -> StudyKind:
    """The kind called ``name``; :class:`SearchError` listing the kinds for anything else."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise SearchError(f"study kind must be one of {', '.join(_REGISTRY)}; got {name!r}")
    return _REGISTRY[name]


def kind_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


from scalelab.search.kinds import baseline, compare, family, grid, sweep  # noqa: E402,F401  (register)
