"""A compound-scaled family: d, w, r = alpha^phi, beta^phi, gamma^phi at each phi (step 2 of the seed
report's Section 3.3), or at the phi that reaches each FLOPs target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from scalelab.arch.scaling import phi_for
from scalelab.cost_cache import cached_cost
from scalelab.errors import SearchError
from scalelab.search.kinds import Plan, Planned, register
from scalelab.search.kinds.coefficients import SEED_COEFFICIENTS, check_coefficients, compound_point
from scalelab.search.kinds.enumerated import EnumeratedKind, dedupe
from scalelab.search.targets import Target

if TYPE_CHECKING:
    from scalelab.search.config import StudyConfig


@dataclass(frozen=True)
class FamilySettings:
    """``targets`` (FLOPs multiples such as '4x' or absolute '800M'), when given, replace ``phis`` with
    phi = ln K / ln(alpha beta^2 gamma^2), which is log2 K for coefficients fitted at 2x."""

    alpha: float = SEED_COEFFICIENTS[0]
    beta: float = SEED_COEFFICIENTS[1]
    gamma: float = SEED_COEFFICIENTS[2]
    phis: tuple[float, ...] = (1.0, 2.0, 3.0)
    targets: tuple[Target, ...] = ()

    def __post_init__(self) -> None:
        check_coefficients(self.alpha, self.beta, self.gamma)
        if not self.phis and not self.targets:
            raise SearchError("give at least one phi (--phi-max) or FLOPs target (--target-flops)")
        if any(t.unit for t in self.targets):
            raise SearchError("family targets are FLOPs (4x or 800M), not latencies")


@register
class Family(EnumeratedKind):
    name = "family"
    title = "compound-scaled family"
    settings = FamilySettings
    report_sections = ("scaling", "curves", "architecture", "models")

    def plan(self, config: StudyConfig, num_classes: int, device: torch.device) -> Plan:
        s: FamilySettings = config.search
        base = config.base.resolve(num_classes)
        base_flops = cached_cost(base).flops
        phis = [phi_for(t.multiple_of(base_flops), s.alpha, s.beta, s.gamma) for t in s.targets] or list(s.phis)
        networks = [compound_point(base, base_flops, s.alpha, s.beta, s.gamma, phi, f"{base.name}-phi{phi:.3g}",
                                   layers=config.base.layer_rounding)
                    for phi in phis]
        return Plan(base, base_flops, dedupe(networks))

    def params(self, planned: Planned) -> dict[str, float | str]:
        return {"phi": planned.point.phi}
