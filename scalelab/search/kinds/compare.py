"""Several networks (presets or spec JSON files) trained under one recipe: the seed report's Table 2 and
its V1-against-V2 comparison. Trials record batch-1 latency (Figure 4) beside accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import torch

from scalelab.arch.zoo import resolve
from scalelab.errors import SearchError
from scalelab.search.kinds import Plan, Planned, register
from scalelab.search.kinds.enumerated import EnumeratedKind, dedupe, price
from scalelab.search.record import Point, TrialRecord

if TYPE_CHECKING:
    from scalelab.search.config import StudyConfig
    from scalelab.search.summary import Summary


@dataclass(frozen=True)
class CompareSettings:
    models: tuple[str, ...] = ()
    budget_check_of: str | None = None
    """The study (in the same storage) whose networks these are, trained here at a larger budget (a budget
    check, :mod:`scalelab.search.budget_check`): the summary sets each network's accuracy against its
    accuracy there, seed by seed. It changes no training, so a study resumed with or without it is the same."""

    def __post_init__(self) -> None:
        if not self.models:
            raise SearchError("name at least one model to compare, e.g. `scalelab compare resnet18_32 "
                              "efficientnet_b0_32`")


@register
class Compare(EnumeratedKind):
    name = "compare"
    title = "comparison of models"
    settings = CompareSettings
    report_sections = ("models", "speed", "curves", "architecture")

    def plan(self, config: StudyConfig, num_classes: int, device: torch.device) -> Plan:
        networks = [price(resolve(name, num_classes), Point(model=name)) for name in config.search.models]
        return Plan(None, None, dedupe(networks))

    def params(self, planned: Planned) -> dict[str, float | str]:
        return {"model": planned.point.model}

    def measures_latency(self, config: StudyConfig) -> bool:
        return True  # Table 2 and Figure 4 set accuracy against batch-1 latency

    def name_parts(self, config: StudyConfig) -> list[str]:
        return [self.name, config.dataset]

    def summary(self, study: optuna.Study, config: StudyConfig, plan: Plan, records: list[TrialRecord],
                out_dir: Path, out: str | None) -> Summary:
        from scalelab.search.kinds.grid import SEPARATION_LEVEL
        from scalelab.search.summary import comparison_table

        summary = comparison_table(study, records, self.best(config, plan, records), SEPARATION_LEVEL)
        if config.search.budget_check_of:
            from scalelab.search.budget_check import against_study

            lines, summary.data["budget_check"] = against_study(study, records, config.search.budget_check_of)
            summary.lines += lines
        return summary
