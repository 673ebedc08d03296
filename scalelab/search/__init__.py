"""Searches and scaling studies on an Optuna storage. One module per study kind (:mod:`.kinds`): the
baseline search, the alpha-beta-gamma grid, compound families, single-dimension sweeps and comparisons.

Data flow: settings (:mod:`.config`, checked by :mod:`.validate`) -> the kind's plan, worked out once
(:mod:`.kinds`) -> study in the storage (:mod:`.study`, :mod:`.storage`) -> workers (:mod:`.runner`) run
trials (:mod:`.trial`), each ending in one :class:`~.record.TrialRecord` (:mod:`.record`) -> summary
(:mod:`.summary`). :mod:`.api` has one call per command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalelab.search.api import join_study, run_file, run_kind, run_study
    from scalelab.search.config import BaseRef, RunOptions, StudyConfig, build, load_study_file
    from scalelab.search.kinds import get_kind, kind_names
    from scalelab.search.record import Status, TrialRecord, read_record
    from scalelab.search.summary import Summary

_HOMES = {
    "api": ("join_study", "run_file", "run_kind", "run_study"),
    "config": ("BaseRef", "RunOptions", "StudyConfig", "build", "load_study_file"),
    "kinds": ("get_kind", "kind_names"),
    "record": ("Status", "TrialRecord", "read_record"),
    "summary": ("Summary",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    """Names are imported on first use, so that a worker importing :mod:`.runner` does not load the summary's
    statistics (scipy.stats, about 0.6 s of every worker's start-up)."""
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME_OF[name]}"), name)
